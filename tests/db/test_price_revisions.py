"""Restated history in storage, on SQLite and PostgreSQL: prices replaced, forecasts rescaled, the revision recorded,
all in one transaction, so that ``forecast_outcomes`` compares forecasts and closes in the same units."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from db.repository import NewModelVersion, Repository
from forecaster.data.revisions import price_revisions
from tests.db.factories import forecast_frame, synthetic_prices
from tests.db.helpers import stored_price_revisions, table_snapshot

TICKER = "TSLA"
PRICE = ["open", "high", "low", "close"]


def _history(repo: Repository, prices: pd.DataFrame) -> int:
    """Stored bars and a horizon-1..5 forecast made on each of the first 50 of them."""
    run_id = repo.start_run("daily", TICKER, prices.index[-1].date())
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "yahoo")
        version = uow.add_model_version(NewModelVersion(
            TICKER, "full", None, "default", {}, dt.date(2024, 1, 2), dt.date(2024, 3, 1), {}, "/m", "ab" * 32,
            status="champion",
        ))  # fmt: skip
        for origin in range(50):
            uow.upsert_forecasts(run_id, version, TICKER, forecast_frame(prices, origin, bias=0.5))
        uow.finish_run(run_id, model_version_id=version)
    return run_id


def _split(prices: pd.DataFrame, day: pd.Timestamp, ratio: float = 3.0) -> pd.DataFrame:
    out = prices.copy()
    out.loc[out.index < day, PRICE] /= ratio
    out.loc[out.index < day, "volume"] *= ratio
    return out


def _outcomes(repo: Repository) -> pd.DataFrame:
    return repo.recent_outcomes(TICKER, last=10_000)


def test_restatement_replaces_prices_rescales_forecasts_and_is_recorded(repo: Repository) -> None:
    prices = synthetic_prices(n=60)
    _history(repo, prices)
    before = _outcomes(repo)
    restated = _split(prices, prices.index[-1] + pd.Timedelta(days=1))  # a 3:1 split the day after the last bar
    revisions = price_revisions(repo.load_prices(TICKER), restated)
    with repo.transaction() as uow:
        uow.replace_prices(TICKER, restated, "yahoo")
        changed = uow.restate_forecasts(TICKER, revisions)
        uow.record_price_revisions(TICKER, revisions, detected_on=dt.date(2024, 3, 26), run_id=None, source="yahoo")
    assert changed == 50 * 5
    stored = repo.load_prices(TICKER)
    assert (stored.index == restated.index).all()
    assert (stored[PRICE].to_numpy() == restated[PRICE].to_numpy()).all()
    after = _outcomes(repo)
    # The errors are the old errors in the new units: no error of split size anywhere.
    merged = before.merge(after, on="forecast_id", suffixes=("_old", "_new"))
    assert len(merged) == len(before) == 250
    for column in ("point", "lo80", "hi95", "naive", "actual", "error", "naive_error"):
        pd.testing.assert_series_equal(
            merged[f"{column}_new"], merged[f"{column}_old"] / 3, check_names=False, rtol=1e-12
        )
    assert (merged["direction_hit_new"] == merged["direction_hit_old"]).all()
    assert (merged["in80_new"] == merged["in80_old"]).all()
    (row,) = stored_price_revisions(repo, TICKER)
    assert (row.first_date, row.last_date, row.sessions) == (
        prices.index[0].date(), prices.index[-1].date(), 60,
    )  # fmt: skip
    assert row.ratio == pytest.approx(1 / 3)


def test_a_failed_restatement_changes_nothing(repo: Repository) -> None:
    prices = synthetic_prices(n=60)
    _history(repo, prices)
    snapshot = {t: table_snapshot(repo, t) for t in ("prices", "forecasts", "price_revisions")}
    restated = _split(prices, prices.index[-1] + pd.Timedelta(days=1))
    with pytest.raises(RuntimeError, match="boom"), repo.transaction() as uow:
        uow.replace_prices(TICKER, restated, "yahoo")
        uow.restate_forecasts(TICKER, price_revisions(prices, restated))
        raise RuntimeError("boom")
    assert {t: table_snapshot(repo, t) for t in snapshot} == snapshot
