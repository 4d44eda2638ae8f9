"""A 3:1 split between two daily runs: the source restates all history, the job applies it in one transaction.

Day 1 stores a history in the old units and forecasts; before day 2 the source (a yfinance-shaped fake of Yahoo,
or a CSV file rewritten in place) divides every earlier bar by 3. Day 2 must replace the stored prices, bring the
stored forecasts into the new units, record the revision and forecast in the new units.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from flows.daily import daily_forecast
from forecaster.data.sources import YahooSource, generate_prices
from tests.db.helpers import stored_price_revisions
from tests.fixtures.yahoo import yahoo_download_frame

DAY1, DAY2 = dt.date(2024, 6, 3), dt.date(2024, 6, 4)
PRICE = ["open", "high", "low", "close"]


def _old_units() -> pd.DataFrame:
    prices = generate_prices(seed=5, n=760, start="2021-08-02")
    return prices.loc[: pd.Timestamp(DAY2)]


def _restated(prices: pd.DataFrame, ratio: float = 3.0) -> pd.DataFrame:
    out = prices.copy()
    out[PRICE] /= ratio
    out["volume"] *= ratio
    return out


class FakeYahoo:
    """``yfinance.download`` as it answers before and after the split (exclusive end, as the real one)."""

    def __init__(self, answer: pd.DataFrame) -> None:
        self.answer, self.calls = answer, []

    def __call__(self, ticker: str, start, end) -> pd.DataFrame:  # set on the class: called unbound
        self.calls.append((start, end))
        frame = self.answer.loc[(self.answer.index >= (start or self.answer.index[0])) & (self.answer.index <= end)]
        return yahoo_download_frame(frame, ticker)


def _check_day2(repo, result: dict, restated: pd.DataFrame) -> None:
    assert result["status"] == "succeeded", result
    stored = repo.load_prices("TSLA")
    expected = restated.loc[: pd.Timestamp(DAY2)]
    assert (stored.index == expected.index).all()
    assert stored["close"].to_numpy() == pytest.approx(expected["close"].to_numpy(), rel=1e-12)
    close2 = float(expected["close"].iloc[-1])
    for f in result["forecasts"]:
        assert abs(f["point"] / close2 - 1) < 0.15 and f["naive"] == pytest.approx(close2), f
    outcomes = repo.recent_outcomes("TSLA", last=100)
    assert len(outcomes) >= 1
    assert (outcomes["abs_error"] / outcomes["actual"]).max() < 0.15, "no error of split size"
    assert (outcomes["naive"] / outcomes["actual"]).between(0.8, 1.25).all()
    (revision,) = stored_price_revisions(repo, "TSLA")
    assert revision.ratio == pytest.approx(1 / 3) and revision.last_date == DAY1 and revision.detected_on == DAY2
    assert "restated" in repo.run(result["run_id"]).details


def test_split_restated_by_yahoo_between_two_days(repo, monkeypatch):
    old = _old_units()
    fake = FakeYahoo(old.loc[: pd.Timestamp(DAY1)])
    monkeypatch.setattr(YahooSource, "_download", fake)
    args = {"source": "yahoo", "preset": "smoke", "horizon": 3}
    assert daily_forecast(as_of=DAY1, **args)[0]["status"] == "succeeded"
    fake.answer = _restated(old)
    fake.calls.clear()
    result = daily_forecast(as_of=DAY2, **args)[0]
    assert len(fake.calls) == 2, "the overlap showed the restatement, then the whole history was fetched again"
    _check_day2(repo, result, _restated(old))


def test_split_restated_in_a_csv_file_forces_a_full_retrain_of_a_price_level_model(repo, tmp_path):
    old, path = _old_units(), tmp_path / "tsla.csv"
    old.loc[: pd.Timestamp(DAY1)].to_csv(path, index_label="date")
    args = {"source": f"csv:{path}", "preset": "seed002", "horizon": 1}
    assert daily_forecast(as_of=DAY1, **args)[0]["status"] == "succeeded"
    _restated(old).to_csv(path, index_label="date")
    result = daily_forecast(as_of=DAY2, retrain="auto", **args)[0]
    assert "history restated" in result["decision"] and "price levels" in result["decision"]
    assert repo.model_version(result["candidate_version_id"]).kind == "full"
    _check_day2(repo, result, _restated(old))
