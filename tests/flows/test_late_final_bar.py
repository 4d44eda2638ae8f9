"""A final bar that is late: Yahoo has no bar for ``as_of`` when the run starts, and has it a little later.

A scheduled run (``as_of`` left out, so the session that has just closed) on a live source is retried (only for
that error) after the delays of ``final_bar_retry_delays``, each attempt leaving its own ``failed`` run row that
names the missing bar, and the attempt that succeeds records the wait on its run.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import flows.daily
from flows.daily import daily_forecast
from forecaster.data.sources import YahooSource, generate_prices
from tests.fixtures.yahoo import yahoo_download_frame

DAY = dt.date(2024, 6, 3)
ARGS = {"source": "yahoo", "preset": "smoke", "horizon": 3}


class LateYahoo:
    """``yfinance.download`` whose bar for ``DAY`` appears only after ``late_calls`` answers."""

    def __init__(self, late_calls: int) -> None:
        self.prices = generate_prices(seed=2, n=760, start="2021-08-02").loc[: pd.Timestamp(DAY)]
        self.late_calls, self.calls = late_calls, 0

    def __call__(self, ticker: str, start, end) -> pd.DataFrame:  # set on the class: called unbound
        self.calls += 1
        known = self.prices if self.calls > self.late_calls else self.prices.iloc[:-1]
        return yahoo_download_frame(
            known.loc[(known.index >= (start or known.index[0])) & (known.index <= end)], ticker
        )


def test_a_late_final_bar_is_waited_for_and_the_wait_is_recorded(repo, monkeypatch):
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[0.2, 0.2, 0.2]")
    monkeypatch.setattr(YahooSource, "_download", LateYahoo(late_calls=2))
    monkeypatch.setattr(flows.daily, "resolve_as_of", lambda as_of: as_of or DAY)  # DAY has just closed
    (result,) = daily_forecast(**ARGS)
    assert result["status"] == "succeeded" and "attempt 3" in result["final_bar_wait"]
    runs = repo.find_runs("daily", "TSLA", DAY, status=None)
    assert [r.status for r in runs] == ["succeeded", "failed", "failed"]
    assert all("has no final bar for TSLA on 2024-06-03" in r.error for r in runs[1:])
    assert "attempt 3" in runs[0].details["final_bar_wait"]


def test_a_bar_still_missing_after_every_retry_fails_the_run(repo, monkeypatch):
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[0.2]")
    monkeypatch.setattr(YahooSource, "_download", LateYahoo(late_calls=99))
    monkeypatch.setattr(flows.daily, "resolve_as_of", lambda as_of: as_of or DAY)
    with pytest.raises(Exception, match="has no final bar for TSLA on 2024-06-03"):
        daily_forecast(**ARGS)
    assert [r.status for r in repo.find_runs("daily", "TSLA", DAY, status=None)] == ["failed", "failed"]


def test_other_errors_are_not_retried(repo, monkeypatch, tmp_path):
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[0.2, 0.2]")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,open,high,low,close,volume\n2024-06-03,1,2,0.5,-1,10\n")
    with pytest.raises(Exception, match="non-positive price"):
        daily_forecast(as_of=DAY, **(ARGS | {"source": f"csv:{bad}"}))
    assert len(repo.find_runs("daily", "TSLA", DAY, status=None)) == 1
