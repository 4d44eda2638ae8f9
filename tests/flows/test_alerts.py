"""Failure alerts of daily-forecast (the flow's on_failure hook) to a REAL SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from flows.daily import daily_forecast
from forecaster.data.sources import generate_prices
from tests.report.conftest import RECIPIENTS, email_env, start_smtp

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
ARGS = {"preset": "smoke", "horizon": 3}
LAST_BAR = dt.date(2024, 6, 4)  # the CSV ends here
NO_BAR = dt.date(2024, 6, 5)


@pytest.fixture
def alerting(tmp_path, monkeypatch):
    """Alerts on (reports off), through a real SMTP server; yields (inbox, csv source)."""
    controller, inbox = start_smtp()
    for key, value in email_env(controller.port).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TSLA_FORECAST_EMAIL_ENABLED", "false")
    monkeypatch.setenv("TSLA_FORECAST_ALERTS_ENABLED", "true")
    prices = generate_prices(seed=3, n=400, start="2022-11-01")
    path = tmp_path / "prices.csv"
    prices.loc[: str(LAST_BAR)].to_csv(path, index_label="date")
    yield inbox, f"csv:{path}"
    controller.stop()


def test_a_failed_run_emails_ticker_day_step_error_and_link_and_a_good_run_sends_none(repo, alerting):
    inbox, source = alerting
    assert daily_forecast(as_of=LAST_BAR, source=source, **ARGS)[0]["status"] == "succeeded"
    assert inbox.envelopes == [], "a succeeded run sends no alert"

    state = daily_forecast(as_of=NO_BAR, source=source, **ARGS, return_state=True)
    assert state.is_failed()
    (envelope,) = inbox.envelopes
    assert envelope.rcpt_tos == RECIPIENTS
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == f"[tsla-forecast] FAILED: TSLA {NO_BAR} at load_prices"
    body = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    error = repo.find_run("daily", "TSLA", NO_BAR, status="failed").error
    assert error.startswith("FinalBarMissingError: ") and "has no final bar for TSLA on 2024-06-05" in error
    assert f"ticker: TSLA\nday:    {NO_BAR}\nstep:   load_prices\nerror:  {error}\n" in body
    link = body.split("flow run: ", 1)[1].splitlines()[0]
    assert link.endswith(f"/runs/flow-run/{state.state_details.flow_run_id}"), link


def test_alerts_are_off_unless_enabled(repo, alerting, monkeypatch):
    inbox, source = alerting
    monkeypatch.setenv("TSLA_FORECAST_ALERTS_ENABLED", "false")
    assert daily_forecast(as_of=NO_BAR, source=source, **ARGS, return_state=True).is_failed()
    assert inbox.envelopes == []
