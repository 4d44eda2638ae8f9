"""The ``forecast_outcomes`` view and :mod:`forecaster.evaluation.metrics` define direction the same way, on both
backends.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from db import migrate
from db.engine import make_engine
from db.repository import NewModelVersion, Repository
from forecaster.evaluation import metrics
from tests.db.factories import synthetic_prices

TICKER = "TSLA"
AS_OF = dt.date(2024, 3, 1)


def _prices_with_unchanged_closes(n: int = 30) -> pd.DataFrame:
    """Synthetic bars where every fourth close equals the one before (a day with no move)."""
    prices = synthetic_prices(n)
    close = prices["close"].to_numpy().copy()
    for i in range(3, n, 4):
        close[i] = close[i - 1]
    return prices.assign(close=close)


def _forecasts(prices: pd.DataFrame) -> pd.DataFrame:
    """Horizon-1 forecasts that call up, down, and make no call (point = last close) in turn."""
    closes, dates = prices["close"].to_numpy(), prices.index
    offsets = np.resize([1.5, -1.5, 0.0], len(prices) - 1)
    point = closes[:-1] + offsets
    return pd.DataFrame(
        {"as_of": dates[:-1], "horizon": 1, "target_date": dates[1:], "naive": closes[:-1], "point": point,
         "lo80": point - 5, "hi80": point + 5, "lo95": point - 8, "hi95": point + 8}
    )  # fmt: skip


def _store(repo: Repository) -> None:
    prices = _prices_with_unchanged_closes()
    run_id = repo.start_run("daily", TICKER, AS_OF)
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
        version_id = uow.add_model_version(NewModelVersion(
            TICKER, "full", None, "default", {}, dt.date(2024, 1, 2), dt.date(2024, 1, 31), {}, "/m", "ab" * 32
        ))  # fmt: skip
        uow.upsert_forecasts(run_id, version_id, TICKER, _forecasts(prices))


def _view(repo: Repository) -> pd.DataFrame:
    return repo.recent_outcomes(TICKER, last=1000)


def test_view_direction_hit_equals_the_python_metric(repo: Repository) -> None:
    _store(repo)
    rows = _view(repo)
    no_call, no_move = rows["point"] == rows["naive"], rows["actual"] == rows["naive"]
    assert (no_call & no_move).any() and (no_call & ~no_move).any() and (~no_call & no_move).any()
    python = metrics.direction_hits(rows["actual"], rows["point"], rows["naive"])
    assert rows["direction_hit"].tolist() == python.tolist()
    scores = metrics.score(rows, metrics=("directional_accuracy", "call_accuracy", "call_share"))
    assert scores["directional_accuracy"] == rows["direction_hit"].mean()
    assert scores["call_accuracy"] == rows.loc[~no_call, "direction_hit"].mean()
    assert scores["call_share"] == (~no_call).mean()


def test_revision_0001_counted_an_unchanged_close_as_a_hit_and_0002_does_not(repo: Repository) -> None:
    _store(repo)
    url = repo.engine.url.render_as_string(hide_password=False)
    repo.engine.dispose()
    migrate.downgrade(url, "0001")
    old_engine = make_engine(url)
    try:
        old = _view(Repository(old_engine))
    finally:
        old_engine.dispose()
    migrate.upgrade(url)
    new = _view(repo)
    both_flat = (old["point"] == old["naive"]) & (old["actual"] == old["naive"])
    assert (old.loc[both_flat, "direction_hit"] == 1).all() and (new.loc[both_flat, "direction_hit"] == 0).all()
    assert (old.loc[~both_flat, "direction_hit"] == new.loc[~both_flat, "direction_hit"]).all()
