"""`tsla-forecast report` as a user runs it: rebuilt from the database alone, emailed on request, one clean error
line for a day without a run."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json

import pytest

from tests.cli.conftest import run_cli
from tests.fixtures.ports import free_port
from tests.report.checks import assert_summary_matches_db
from tests.report.conftest import RECIPIENTS, SMTP_PASSWORD, email_env

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def _imports(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}  # fmt: skip


def test_report_rebuilds_the_latest_day_without_training_or_prefect(seeded, repo, home):
    result = run_cli("report", env={"PYTHONPROFILEIMPORTTIME": "1"}, fresh=True)
    assert result.returncode == 0, result.stderr[-2000:]
    day = seeded.days[-1]
    folder = home / "reports" / str(day) / "TSLA"
    assert f"report: {folder / 'report.html'}" in result.stdout
    assert result.stdout.startswith(f"TSLA {day}: next close $")
    assert_summary_matches_db(json.loads((folder / "summary.json").read_text()), repo)
    imported = _imports(result.stderr)
    assert "tensorflow" not in imported and "keras" not in imported and "prefect" not in imported


def test_report_of_a_day_without_a_run_is_one_error_line(seeded):
    saturday = seeded.days[-1] + dt.timedelta(days=(5 - seeded.days[-1].weekday()) % 7)
    result = run_cli("report", "--as-of", str(saturday))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no report for TSLA on {saturday}: it is not an NYSE trading day "
        f"(latest succeeded run: {seeded.days[-1]})"
    )
    assert "Traceback" not in result.stderr


def test_report_on_an_empty_database_says_run_first(home):
    result = run_cli("report", "--ticker", "tsla")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: no succeeded daily run of TSLA in the database yet: run `tsla-forecast run` first"
    )


def test_report_email_reaches_a_real_smtp_server(seeded, repo, smtp_server):
    controller, inbox = smtp_server
    day = seeded.days[-5]
    result = run_cli("report", "--as-of", str(day), "--email", env=email_env(controller.port))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "emailed to 2 recipient(s) via 127.0.0.1" in result.stdout
    (envelope,) = inbox.envelopes
    assert envelope.rcpt_tos == RECIPIENTS
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"].startswith(f"TSLA {day}: next close $")
    (attached,) = [p for p in msg.iter_attachments() if p.get_filename() == "summary.json"]
    assert_summary_matches_db(json.loads(attached.get_content()), repo)
    assert repo.run(seeded.run_ids[day]).details["email"]["attempts"] == 1


def test_report_email_to_an_unreachable_server_warns_exits_1_and_hides_the_password(seeded, repo, home):
    result = run_cli("report", "--email", env=email_env(free_port()))
    assert result.returncode == 1
    assert "warning: email delivery failed after 3 attempt(s): ConnectionRefusedError" in result.stderr
    assert (home / "reports" / str(seeded.days[-1]) / "TSLA" / "report.html").exists(), "archived all the same"
    assert SMTP_PASSWORD not in result.stdout + result.stderr
    warnings = repo.run(seeded.run_ids[seeded.days[-1]]).details["warnings"]
    assert warnings and warnings[-1].startswith("email delivery failed after 3 attempt(s)")


def test_report_email_without_recipients_is_one_error_line(seeded):
    env = email_env(free_port()) | {"TSLA_FORECAST_EMAIL_RECIPIENTS": "[]"}
    result = run_cli("report", "--email", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: no email recipients: set TSLA_FORECAST_EMAIL_RECIPIENTS (a JSON list)"
    )
