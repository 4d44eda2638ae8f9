"""Retries in one place (#21) and no silent hang (#20 item 1), through the real daily flow (Prefect test harness).

Only transient errors are retried, by Prefect: a source that could not answer now (``fetch-prices``) and a missing
final bar, the latter only for a live source on a scheduled run, and loudly. A file that lacks the bar, a missing
file, invalid prices: one attempt, at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import pandas as pd
import pytest
from prefect.exceptions import ParameterTypeError

import flows.daily
from flows.daily import daily_forecast
from forecaster.data.sources import SourceUnavailableError, YahooSource, generate_prices
from forecaster.errors import ConfigError, FinalBarMissingError, InvalidPricesError, SourceError
from tests.fixtures.yahoo import yahoo_download_frame, yahoo_empty_frame

DAY = dt.date(2024, 6, 3)
ARGS = {"preset": "smoke", "horizon": 3}
PRICES = generate_prices(seed=2, n=760, start="2021-08-02").loc[: pd.Timestamp("2024-06-07")]


class Yahoo:
    """``YahooSource._download``: each call answers the next item (an exception raises, an int is the number of
    final bars left out at the end), then keeps answering the last."""

    def __init__(self, *answers: BaseException | int) -> None:
        self.answers, self.calls = list(answers), 0

    def __call__(self, ticker: str, start, end) -> pd.DataFrame:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, BaseException):
            raise answer
        known = PRICES.loc[: pd.Timestamp(end)].iloc[: len(PRICES.loc[: pd.Timestamp(end)]) - answer]
        return yahoo_download_frame(known.loc[known.index >= (start or known.index[0])], ticker)


def _statuses(repo, day=DAY) -> list[str]:
    return [r.status for r in repo.find_runs("daily", "TSLA", day, status=None)]


def test_a_yahoo_hiccup_is_retried_by_prefect_and_the_run_succeeds(repo, monkeypatch):
    monkeypatch.setenv("TSLA_FORECAST_FETCH_RETRIES", "2")
    monkeypatch.setattr(flows.daily, "FETCH_RETRY_DELAYS", (0.0,))
    monkeypatch.setattr(flows.daily.fetch_bars, "retry_delay_seconds", [0.0])
    yahoo = Yahoo(ConnectionError("curl: (7) Failed to connect"), 0)
    monkeypatch.setattr(YahooSource, "_download", yahoo)
    (result,) = daily_forecast(as_of=DAY, source="yahoo", **ARGS)
    assert result["status"] == "succeeded" and yahoo.calls == 2, "one failed fetch, retried once, inside one run"
    assert _statuses(repo) == ["succeeded"]


@pytest.mark.parametrize(
    ("text", "error"),
    [(None, SourceError), ("date,open,high,low,close,volume\n2024-06-03,1,2,0.5,-1,10\n", InvalidPricesError)],
)
def test_a_missing_file_or_invalid_prices_are_never_retried(repo, monkeypatch, tmp_path, text, error):
    monkeypatch.setenv("TSLA_FORECAST_FETCH_RETRIES", "2")
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[30, 30]")
    path = tmp_path / "prices.csv"
    if text is not None:
        path.write_text(text)
    started = time.monotonic()
    with pytest.raises(error):
        daily_forecast(as_of=DAY, source=f"csv:{path}", **ARGS)
    assert time.monotonic() - started < 20, "no retry delay was waited"
    assert _statuses(repo) == ["failed"]


def test_a_file_without_the_bar_fails_at_once_even_on_a_scheduled_run(repo, monkeypatch, tmp_path):
    """#20 item 1: the default delays wait 2.75 h for a bar; a file never gets it, so it is not waited for."""
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[30, 30]")
    monkeypatch.setattr(flows.daily, "resolve_as_of", lambda as_of: as_of or dt.date(2024, 6, 5))
    path = tmp_path / "prices.csv"
    PRICES.loc[:"2024-06-03"].to_csv(path, index_label="date")
    started = time.monotonic()
    with pytest.raises(FinalBarMissingError, match=r"has no final bar for TSLA on 2024-06-05 \(newest: 2024-06-03\)"):
        daily_forecast(source=f"csv:{path}", **ARGS)
    assert time.monotonic() - started < 20
    assert _statuses(repo, dt.date(2024, 6, 5)) == ["failed"]


def test_a_scheduled_yahoo_run_waits_for_a_late_bar_and_says_so(repo, monkeypatch, caplog):
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[0.2, 0.2]")
    monkeypatch.setattr(flows.daily, "resolve_as_of", lambda as_of: as_of or DAY)  # DAY has just closed
    yahoo = Yahoo(1, 0)
    monkeypatch.setattr(YahooSource, "_download", yahoo)
    with caplog.at_level(logging.WARNING, logger="flows.retries"):
        (result,) = daily_forecast(source="yahoo", **ARGS)
    assert result["status"] == "succeeded" and "attempt 2" in result["final_bar_wait"]
    assert _statuses(repo) == ["succeeded", "failed"]
    (said,) = [r.getMessage() for r in caplog.records if r.name == "flows.retries"]
    assert said.startswith("yahoo has no final bar for TSLA on 2024-06-03 (newest: 2024-05-31): waiting for it: ")
    assert "attempt 2 of 3 at " in said and ", the last at " in said
    assert caplog.records[-1].levelno == logging.WARNING, "visible under -q"


def test_a_yahoo_run_for_a_given_day_does_not_wait(repo, monkeypatch):
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[30, 30]")
    monkeypatch.setattr(YahooSource, "_download", Yahoo(1))
    with pytest.raises(FinalBarMissingError):
        daily_forecast(as_of=DAY, source="yahoo", **ARGS)
    assert _statuses(repo) == ["failed"]


@pytest.mark.reports
def test_sessions_caught_up_before_a_failure_keep_their_reports(repo, home, monkeypatch, tmp_path):
    """#20 item 1: the file ends on 2024-06-05; a run for 2024-06-07 catches up 06-04 and 06-05, then fails on
    06-06. The two caught-up sessions are stored and reported."""
    path = tmp_path / "prices.csv"
    PRICES.loc[:"2024-06-05"].to_csv(path, index_label="date")
    assert daily_forecast(as_of=DAY, source=f"csv:{path}", **ARGS)[0]["status"] == "succeeded"
    with pytest.raises(FinalBarMissingError, match="on 2024-06-06"):
        daily_forecast(as_of=dt.date(2024, 6, 7), source=f"csv:{path}", **ARGS)
    for day in ("2024-06-04", "2024-06-05"):
        assert _statuses(repo, dt.date.fromisoformat(day)) == ["succeeded"]
        assert (home / "reports" / day / "TSLA" / "report.html").exists(), day


def test_a_ticker_parameter_that_could_escape_is_refused_before_the_flow_runs(repo):
    with pytest.raises(ParameterTypeError, match="invalid ticker '../../esc'"):
        daily_forecast(tickers=["../../esc"], as_of=DAY, source="synthetic", **ARGS)
    assert repo.find_runs("daily", "../../esc", DAY, status=None) == []


def test_flow_parameters_are_normalised_and_deployments_enforce_the_pattern():
    import yaml

    from flows.backfill import backfill
    from flows.retrain import retrain_model
    from flows.tickers import TICKER_PATTERN
    from tests.cli.conftest import ROOT

    for flow in (daily_forecast, backfill, retrain_model):
        assert flow.validate_parameters({"tickers": ["tsla", "brk-b"]} | _required(flow))["tickers"] == [
            "TSLA",
            "BRK-B",
        ]
        schema = flow.parameters.properties["tickers"]["anyOf"][0]["items"]
        assert schema["pattern"] == TICKER_PATTERN and schema["maxLength"] == 15
    deployments = yaml.safe_load((ROOT / "deployment.yaml").read_text())["deployments"]
    assert all(d.get("enforce_parameter_schema") is True for d in deployments)


def _required(flow) -> dict:
    return {"start": "2024-06-03", "end": "2024-06-03"} if flow.name == "backfill" else {}


def test_only_transient_errors_are_retried():
    from prefect.states import Failed

    from flows.retries import retry_fetch

    def retried(exc: BaseException) -> bool:
        return retry_fetch(None, None, Failed(data=exc))

    assert retried(SourceUnavailableError("Yahoo Finance returned no data"))
    for permanent in (ConfigError("x"), InvalidPricesError([]), SourceError("price file not found: x.csv"),
                      FinalBarMissingError("no final bar"), FileNotFoundError("x")):  # fmt: skip
        assert not retried(permanent), permanent
    assert yahoo_empty_frame("TSLA").empty
