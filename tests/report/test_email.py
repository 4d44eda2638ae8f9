"""Email delivery of the daily report to a REAL SMTP server (aiosmtpd on a loopback port, with AUTH), inside the
daily-forecast flow under a Prefect test harness; and what happens when the server cannot be reached."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
import smtplib

import pytest

from flows.daily import daily_forecast
from flows.report import mail
from flows.report.mail import DeliveryError, SmtpConfig, build_message, send_with_retries
from flows.report.render import FIGURES
from flows.retries import is_transient_smtp
from flows.settings import Settings
from forecaster.errors import ConfigError
from tests.db.helpers import count_rows
from tests.fixtures.ports import free_port
from tests.report.checks import assert_png, assert_summary_matches_db
from tests.report.conftest import RECIPIENTS, SMTP_PASSWORD, email_env, start_smtp

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
DAY1, DAY2, DAY3 = dt.date(2024, 6, 3), dt.date(2024, 6, 4), dt.date(2024, 6, 5)
ARGS = {"source": "synthetic:3", "preset": "smoke", "horizon": 3}


def run(as_of, **kw):
    return daily_forecast(as_of=as_of, **(ARGS | kw))


def _parse(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


@pytest.mark.reports
def test_daily_flow_emails_the_report_with_both_parts_inline_pngs_and_summary(prefect_api, repo, smtp_server,
                                                                              monkeypatch):  # fmt: skip
    controller, inbox = smtp_server
    for key, value in email_env(controller.port).items():
        monkeypatch.setenv(key, value)
    run(DAY1), run(DAY2)
    result = run(DAY3)[0]
    assert result["status"] == "succeeded" and result["report"]["emailed"] is True
    assert len(inbox.envelopes) == 3, "one email per day"
    envelope = inbox.envelopes[-1]
    assert envelope.mail_from == "tsla-forecast@example.com" and envelope.rcpt_tos == RECIPIENTS
    msg = _parse(envelope)
    archive = repo_summary = json.loads((Settings().reports_dir / str(DAY3) / "TSLA" / "summary.json").read_text())
    first = repo_summary["forecasts"][0]
    assert msg["Subject"].startswith(f"TSLA {DAY3}: next close ${first['point']:,.2f} (80% $")
    assert msg["To"] == ", ".join(RECIPIENTS)

    text, html = msg.get_body(preferencelist=("plain",)), msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "Next close" in text.get_content() and "HOW GOOD IS IT" in text.get_content()
    cids = set(re.findall(r'src="cid:([^"]+)"', html.get_content()))
    images = {part["Content-ID"].strip("<>"): part for part in msg.walk() if part.get_content_type() == "image/png"}
    assert len(images) == len(FIGURES) and set(images) == cids, "every figure is inline and referenced from the HTML"
    for part in images.values():
        assert_png(part.get_content())

    attached = [p for p in msg.iter_attachments() if p.get_filename() == "summary.json"]
    assert len(attached) == 1
    summary = json.loads(attached[0].get_content())
    assert summary == archive
    assert_summary_matches_db(summary, repo)
    assert summary["skill"]["windows"][0]["n"] == 2, "DAY1's and DAY2's next-day forecasts have matured"
    assert repo.run(result["run_id"]).details["email"]["recipients"] == 2


@pytest.mark.reports
def test_rerunning_the_day_replaces_the_report_but_does_not_email_again(prefect_api, repo, smtp_server,
                                                                        monkeypatch):  # fmt: skip
    controller, inbox = smtp_server
    for key, value in email_env(controller.port).items():
        monkeypatch.setenv(key, value)
    run(DAY1)
    folder = Settings().reports_dir / str(DAY1) / "TSLA"
    (folder / "marker").write_text("old")
    again = run(DAY1)[0]
    assert again["status"] == "already_done" and again["report"]["emailed"] is False
    assert not (folder / "marker").exists() and (folder / "report.html").exists()
    assert len(inbox.envelopes) == 1


@pytest.mark.reports
def test_unreachable_smtp_server_warns_on_the_run_and_never_logs_the_password(prefect_api, repo, home, monkeypatch,
                                                                              caplog, capfd):  # fmt: skip
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    for key, value in email_env(free_port()).items():  # nobody listens there
        monkeypatch.setenv(key, value)
    caplog.set_level("DEBUG")
    state = daily_forecast(as_of=DAY1, **ARGS, return_state=True)
    assert state.is_completed(), "an email failure never fails the run"
    result = state.result()[0]
    assert result["status"] == "succeeded" and count_rows(repo)["forecasts"] == 3, "the forecast is stored"
    warning = result["report"]["warning"]
    assert warning.startswith("email delivery failed after 3 attempt(s): ConnectionRefusedError")
    assert repo.run(result["run_id"]).details["warnings"] == [warning]
    assert (home / "reports" / str(DAY1) / "TSLA" / "report.html").exists()

    APILogHandler().flush()  # send the queued run logs to the API now
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    api_logs = "\n".join(log.message for log in logs)
    assert "email delivery failed" in api_logs, "the warning reaches the Prefect run's logs"
    captured = capfd.readouterr()
    details = json.dumps(repo.run(result["run_id"]).details)
    archive = "".join(p.read_text() for p in (home / "reports" / str(DAY1) / "TSLA").glob("*.*[lnt]"))
    for where, text in {"python logs": caplog.text, "stdout": captured.out, "stderr": captured.err,
                        "prefect logs": api_logs, "run details": details, "archive": archive}.items():  # fmt: skip
        assert SMTP_PASSWORD not in text, f"the SMTP password appears in the {where}"


def test_prefect_retries_deliver_once_the_server_comes_up(prefect_api, monkeypatch):
    """One retry layer: Prefect's task retries; a refused connection is transient and is retried. The server starts
    as the first attempt is refused (not on a timer: a cold task engine can take longer than any fixed delay before
    its first attempt)."""
    port, started, refusals = free_port(), [], []
    send_once = mail.send_message

    def refused_until_the_first_attempt(message: bytes, smtp: SmtpConfig) -> None:
        try:
            send_once(message, smtp)
        except OSError as exc:
            refusals.append(exc)
            if not started:
                started.append(start_smtp(port))
            raise

    monkeypatch.setattr(mail, "send_message", refused_until_the_first_attempt)
    smtp = SmtpConfig("127.0.0.1", port, "none", "a@example.com", ("b@example.com",), "reporter",
                      Settings(smtp_password=SMTP_PASSWORD).smtp_password, timeout=5)  # fmt: skip
    message = build_message(subject="hello", sender=smtp.sender, recipients=smtp.recipients, text="plain",
                            html="<p>html</p>", inline_images={}, attachments={})  # fmt: skip
    try:
        delivery = send_with_retries(message.as_bytes(), smtp, retries=3, delay=2.0)
    finally:
        for controller, _ in started:
            controller.stop()
    assert [type(exc) for exc in refusals] == [ConnectionRefusedError], "the first attempt met no server"
    assert delivery.ok and delivery.attempts == 2
    assert [_parse(e)["Subject"] for e in started[0][1].envelopes] == ["hello"]
    assert SMTP_PASSWORD not in repr(smtp)


def test_a_wrong_password_is_not_retried_and_is_masked(prefect_api):
    controller, inbox = start_smtp()
    smtp = SmtpConfig("127.0.0.1", controller.port, "none", "a@example.com", ("b@example.com",), "reporter",
                      Settings(smtp_password="not-" + SMTP_PASSWORD).smtp_password, timeout=5)  # fmt: skip
    try:
        delivery = send_with_retries(b"Subject: x\r\n\r\nbody", smtp, retries=2, delay=0.0)
    finally:
        controller.stop()
    assert not delivery.ok and delivery.attempts == 1 and "SMTPAuthenticationError" in delivery.error
    assert SMTP_PASSWORD not in delivery.error and inbox.envelopes == []


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (smtplib.SMTPServerDisconnected("gone"), True),
        (smtplib.SMTPResponseException(451, b"try again later"), True),
        (smtplib.SMTPResponseException(550, b"no such user"), False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
        (smtplib.SMTPRecipientsRefused({"x@example.com": (550, b"no")}), False),
        (DeliveryError("the server refused 1 of 2 recipient(s)"), False),
        (ConfigError("no email recipients"), False),
    ],
)
def test_only_transient_smtp_failures_are_retried(error, transient):
    assert is_transient_smtp(error) is transient


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_modes_against_a_plain_server_fail_cleanly(prefect_api, security):
    controller, _ = start_smtp()
    smtp = SmtpConfig("127.0.0.1", controller.port, security, "a@example.com", ("b@example.com",), timeout=5)
    try:
        delivery = send_with_retries(b"Subject: x\r\n\r\nbody", smtp, retries=0, delay=0.0)
    finally:
        controller.stop()
    assert not delivery.ok and delivery.attempts == 1 and delivery.error


def test_password_from_a_prefect_secret_block_logs_in(prefect_api, smtp_server, monkeypatch):
    from prefect.blocks.system import Secret

    controller, inbox = smtp_server
    Secret(value=SMTP_PASSWORD).save("test-smtp-password", overwrite=True)
    for key, value in email_env(controller.port).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TSLA_FORECAST_SMTP_PASSWORD")
    monkeypatch.setenv("TSLA_FORECAST_SMTP_PASSWORD_BLOCK", "test-smtp-password")
    smtp = SmtpConfig.from_settings(Settings())
    assert smtp.password is not None and SMTP_PASSWORD not in repr(smtp)
    delivery = send_with_retries(b"Subject: via block\r\n\r\nbody", smtp, retries=0, delay=0.0)
    assert delivery.ok and len(inbox.envelopes) == 1
