"""``tsla-forecast status``: the health check a cron job or monitor runs (database only, exit code 1 when unhealthy)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from flows.cli.status import collect_status, due_session, live_summary, render
from flows.settings import Settings
from forecaster.data.calendar import next_sessions
from tests.cli.conftest import ROOT, run_cli
from tests.report.seed import seed_history
from tests.report.test_cli_report import _imports


def _evening(day: dt.date, hour_utc: int = 23) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, dt.time(hour_utc)), tz="UTC")


def test_due_session_waits_until_an_hour_after_the_scheduled_run():
    thursday = dt.date(2024, 3, 14)  # New York is on EDT: close 20:00 UTC, cron 21:30 UTC, late from 22:30 UTC
    assert due_session(pd.Timestamp("2024-03-14 22:29", tz="UTC"), 150) == dt.date(2024, 3, 13)
    assert due_session(pd.Timestamp("2024-03-14 22:31", tz="UTC"), 150) == thursday
    assert due_session(pd.Timestamp("2024-03-16 12:00", tz="UTC"), 150) == dt.date(2024, 3, 15), "a Saturday"


def test_live_summary_is_u2_and_coverage_of_the_last_horizon_1_forecasts(repo):
    seeded = seed_history(repo, runs=80)
    frame = repo.outcomes_until("TSLA", seeded.days[-1], sessions=70)
    h1 = frame[(frame["horizon"] == 1) & frame["actual"].notna()].sort_values("target_date").tail(20)
    error, naive = h1["actual"] - h1["point"], h1["actual"] - h1["naive"]
    u2 = np.sqrt((error**2).mean()) / np.sqrt((naive**2).mean())
    inside = ((h1["lo80"] <= h1["actual"]) & (h1["actual"] <= h1["hi80"])).mean()
    summary = live_summary(frame)
    assert summary["20"] == {"n": 20, "u2": pytest.approx(u2), "coverage80": pytest.approx(inside)}
    assert summary["60"]["n"] == 60
    assert live_summary(frame.iloc[:0])["20"] == {"n": 0, "u2": None, "coverage80": None}


def test_a_run_on_time_is_healthy_and_one_missed_session_is_not(repo, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # no Prefect API (the session's test API is not this one's)
    seeded = seed_history(repo, runs=80)
    last = seeded.days[-1]
    healthy = collect_status(Settings(), now=_evening(last))
    assert healthy["healthy"] and healthy["problems"] == []
    (t,) = healthy["tickers"]
    assert t["last_run"]["as_of"] == str(last) and t["last_run"]["status"] == "succeeded"
    assert t["sessions_behind"] == 0 and t["champion"]["id"] == seeded.version_id
    assert t["champion"]["age_sessions"] == 80, "seeded: full fit on the session before the first of 80 runs"
    next_day = next_sessions(last, 1)[0].date()
    late = collect_status(Settings(), now=_evening(next_day))
    assert late["problems"] == [f"TSLA: 1 session(s) behind: the last succeeded run is {last}, {next_day} is due"]
    text = render(late)
    assert text.startswith(f"tsla-forecast status at {_evening(next_day).isoformat()}: UNHEALTHY")
    assert "next scheduled daily run: n/a (no Prefect API reachable)" in text


def test_a_failed_run_of_the_newest_session_is_unhealthy_and_its_error_and_warning_are_shown(repo):
    seeded = seed_history(repo, runs=30)
    last = seeded.days[-1]
    repo.record_run_warning(seeded.run_ids[last], "email delivery failed after 3 attempt(s): ConnectionRefusedError")
    next_day = next_sessions(last, 1)[0].date()
    run_id = repo.start_run("daily", "TSLA", next_day, None)
    repo.fail_run(run_id, "SourceError: yahoo has no final bar for TSLA")
    status = collect_status(Settings(), now=_evening(next_day))
    assert status["problems"][0] == (
        f"TSLA: the daily run of its newest session ({next_day}) failed: SourceError: yahoo has no final bar for TSLA"
    )
    (t,) = status["tickers"]
    assert t["last_warning"] == {
        "as_of": str(last),
        "text": "email delivery failed after 3 attempt(s): ConnectionRefusedError",
    }


@pytest.mark.parametrize("misuse", ["older", "same"])
def test_a_refused_misuse_does_not_make_the_job_unhealthy(repo, misuse):
    """#20 item 7: health follows the newest session's run, not the last attempt (a re-run of an older day that is
    refused, or a mistyped CSV path on a day that already succeeded, says nothing about the job)."""
    seeded = seed_history(repo, runs=30)
    last = seeded.days[-1]
    day = seeded.days[-3] if misuse == "older" else last
    repo.fail_run(repo.start_run("daily", "TSLA", day, None), "SourceError: price file not found: typo.csv")
    status = collect_status(Settings(), now=_evening(last))
    assert status["healthy"] and status["problems"] == []
    assert status["tickers"][0]["last_run"]["status"] == "failed", "the last attempt is still shown"


def test_status_cli_exits_1_when_behind_prints_json_and_imports_neither_tensorflow_nor_prefect(repo):
    seed_history(repo, runs=30)
    result = run_cli("status", "--json", env={"PYTHONPROFILEIMPORTTIME": "1", "PREFECT_API_URL": ""}, fresh=True)
    assert result.returncode == 1, result.stderr[-2000:]
    status = json.loads(result.stdout)
    assert status["healthy"] is False and "session(s) behind" in status["problems"][0]
    assert status["next_scheduled_run"] is None
    imported = _imports(result.stderr)
    assert not imported & {"tensorflow", "keras", "prefect"}, sorted(imported & {"tensorflow", "keras", "prefect"})


def test_status_cli_exits_0_right_after_an_on_time_run(repo, home):
    faketime = shutil.which("faketime")
    if faketime is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("faketime is not installed: CI must run the health-check exit code test", pytrace=False)
        pytest.skip("faketime is not installed")
    seeded = seed_history(repo, runs=30)
    now = _evening(seeded.days[-1])
    result = subprocess.run(
        [faketime, f"{now:%Y-%m-%d %H:%M:%S}", sys.executable, "-m", "flows.cli", "status"], cwd=ROOT,
        capture_output=True, text=True, timeout=120, env=os.environ | {"TZ": "UTC", "PREFECT_API_URL": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert ": HEALTHY" in result.stdout.splitlines()[0]
    assert f"last run  {seeded.days[-1]} succeeded" in result.stdout
