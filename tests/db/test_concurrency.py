"""Two processes at once: upserts of the same (ticker, as_of) give one set of rows and no error; a run lock is held
by one process at a time and dies with it; the database keeps one live and one succeeded run per key."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import sqlalchemy as sa

from db.engine import make_engine
from db.locks import RunLockTimeoutError
from db.repository import DuplicateRunError, NewModelVersion, Repository
from tests.db.factories import forecast_frame, synthetic_prices
from tests.db.helpers import count_rows

TICKER = "TSLA"
WORKERS = 2
TIMEOUT_S = 60


def _writer(url: str, version_id: int, barrier: Any, results: Any, kind: str) -> None:
    """One run: start it, then upsert the same prices and forecasts as the other process."""
    repo = Repository(make_engine(url))
    try:
        prices = synthetic_prices(30)
        run_id = repo.start_run(kind, TICKER, prices.index[20].date())  # two kinds: one run per key
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
            NewModelVersion(
                TICKER, "full", None, "default", {}, dt.date(2020, 1, 2), dt.date(2024, 1, 2), {}, "/m", "0" * 64
            )
        )
    url = repo.engine.url.render_as_string(hide_password=False)
    repo.dispose()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    kinds = ("daily", "retrain")
    processes = [ctx.Process(target=_writer, args=(url, version_id, barrier, results, kind)) for kind in kinds]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=TIMEOUT_S) for _ in processes]
    for process in processes:
        process.join(timeout=TIMEOUT_S)
    assert outcomes == ["ok"] * WORKERS
    counts = count_rows(repo)
    assert counts["prices"] == 30 and counts["forecasts"] == 5 and counts["runs"] == WORKERS
    assert {repo.run(i).status for i in (1, 2)} == {"succeeded"}


# ------------------------------------------------------------------ one run per key: the lock and the indexes

HOLDER = """
import sys, time
from db.engine import make_engine
from db.repository import Repository
with Repository(make_engine(sys.argv[1])).run_lock(sys.argv[2], 5):
    print("locked", flush=True)
    time.sleep(120)
"""


def hold_in_another_process(url: str, name: str) -> subprocess.Popen:
    """A process that holds the run lock ``name`` until it is killed (returns once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, name], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_run_lock_waits_bounded_and_dies_with_its_holder(repo: Repository) -> None:
    url = repo.engine.url.render_as_string(hide_password=False)
    holder = hold_in_another_process(url, "daily-TSLA-20240603")
    try:
        started = time.monotonic()
        with pytest.raises(RunLockTimeoutError, match="held by another process"):
            with repo.run_lock("daily-TSLA-20240603", timeout=1):
                pass
        assert 1 <= time.monotonic() - started < 10
        with repo.run_lock("daily-TSLA-20240604", timeout=1):  # another key is free
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)  # reaped, its pipe closed
    with repo.run_lock("daily-TSLA-20240603", timeout=10):  # kill -9 freed it: no clean-up needed
        pass


@pytest.mark.parametrize("status", ["running", "succeeded"])
def test_the_database_refuses_a_second_live_or_succeeded_run_per_daily_key(repo: Repository, status: str) -> None:
    day = dt.date(2024, 6, 3)
    for kind in ("daily", "retrain"):
        first = repo.start_run(kind, TICKER, day)
        if status == "succeeded":
            with repo.transaction() as tx:
                tx.finish_run(first)
            second = repo.start_run(kind, TICKER, day)
            with pytest.raises(sa.exc.IntegrityError), repo.transaction() as tx:
                tx.finish_run(second)
        else:
            with pytest.raises(DuplicateRunError, match=f"a {kind} run of TSLA 2024-06-03 is already running"):
                repo.start_run(kind, TICKER, day)
    for _ in range(2):  # backtests are keyed by their parameters too: several per (ticker, end) are legal
        run_id = repo.start_run("backtest", TICKER, day)
        with repo.transaction() as tx:
            tx.finish_run(run_id)
    assert len(repo.find_runs("backtest", TICKER, day)) == 2


INSERT_RUN = "INSERT INTO runs (kind, ticker, as_of, status, started_at) VALUES ('daily', 'TSLA', :d, :s, :t)"
STARTED = dt.datetime(2024, 6, 3, 22, tzinfo=dt.UTC)


def test_migration_0003_resolves_duplicate_runs_written_before_it(db_url: str) -> None:
    from db import migrate

    migrate.upgrade(db_url, "0002")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for status in ("succeeded", "succeeded", "running", "running"):
                conn.execute(sa.text(INSERT_RUN), {"d": dt.date(2024, 6, 3), "s": status, "t": STARTED})
        migrate.upgrade(db_url)
        with engine.connect() as conn:
            statuses = [r[0] for r in conn.execute(sa.text("SELECT status FROM runs ORDER BY id"))]
    finally:
        engine.dispose()
    assert statuses == ["succeeded", "skipped", "failed", "running"], "the first success and the newest live run stay"
