"""Two processes upserting the same (ticker, as_of) at the same moment: one set of rows, no error."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time
from typing import Any

from db.engine import make_engine
from db.repository import Repository
from tests.db.factories import forecast_frame, synthetic_prices

TICKER = "TSLA"
WORKERS = 2
TIMEOUT_S = 60


def _writer(url: str, version_id: int, barrier: Any, results: Any) -> None:
    """One daily run: start it, then upsert the same prices and forecasts as the other process."""
    repo = Repository(make_engine(url))
    try:
        prices = synthetic_prices(30)
        run_id = repo.start_run("daily", TICKER, prices.index[20].date())
        barrier.wait(timeout=TIMEOUT_S)
        with repo.transaction() as uow:
            uow.upsert_prices(TICKER, prices, "synthetic")
            uow.upsert_forecasts(run_id, version_id, TICKER, forecast_frame(prices, 20))
            time.sleep(0.2)  # hold the transaction open so the two really overlap
            uow.finish_run(run_id)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        repo.dispose()


def test_concurrent_upserts_of_the_same_day_produce_one_row_and_no_error(repo: Repository) -> None:
    with repo.transaction() as uow:
        version_id = uow.add_model_version(
            TICKER, "full", None, "default", {}, dt.date(2020, 1, 2), dt.date(2024, 1, 2), {}, "/m", "0" * 64
        )
    url = repo.engine.url.render_as_string(hide_password=False)
    repo.dispose()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    processes = [ctx.Process(target=_writer, args=(url, version_id, barrier, results)) for _ in range(WORKERS)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=TIMEOUT_S) for _ in processes]
    for process in processes:
        process.join(timeout=TIMEOUT_S)
    assert outcomes == ["ok"] * WORKERS
    counts = repo.count_rows()
    assert counts["prices"] == 30 and counts["forecasts"] == 5 and counts["runs"] == WORKERS
    assert {repo.run(i).status for i in (1, 2)} == {"succeeded"}
