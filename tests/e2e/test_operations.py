"""Operations through the real stack: a failed ``daily-forecast/daily`` deployment run emails an alert to a real SMTP
server on loopback (a succeeded one sends none), and ``retrain-model/weekly-retrain`` registers a full-fit version.

Three deployment runs in all; they share the session's stack (and database) with test_deployment.py.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e import test_deployment
from tests.e2e.conftest import PREFECT, Stack, describe
from tests.e2e.test_deployment import AS_OF, HORIZON, flow_run_id, run_daily

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(600),
    pytest.mark.xdist_group("e2e-sqlite-stack"),  # with test_deployment.py: one stack
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]
NEXT = dt.date(2024, 3, 15)  # the session after AS_OF
ALERT_WAIT_S = 60
prices_csv = test_deployment.prices_csv  # the same generated CSV (a module-scoped fixture)


def _deployment_run(stack: Stack, name: str, *params: str):
    args = [a for p in params for a in ("--param", p)]
    return stack.cli(PREFECT, "deployment", "run", name, *args, "--watch", "--watch-timeout", "300", timeout=360)


def _wait_for_mail(stack: Stack, count: int, wait: float = ALERT_WAIT_S) -> list:
    """The hook sends after the run's final state is set, so ``--watch`` may return a moment before it arrives."""
    deadline = time.monotonic() + wait
    while len(stack.inbox.envelopes) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    return stack.inbox.envelopes


def test_a_failed_deployment_run_emails_an_alert_and_a_succeeded_one_does_not(stack: Stack, prices_csv: Path):
    ok = run_daily(stack, prices_csv)
    assert ok.returncode == 0, f"{describe(ok)}\n{stack.logs()}"
    assert _wait_for_mail(stack, 1, wait=3) == [], "a succeeded (or already done) run sends no alert"

    truncated = stack.tmp / "prices-until-as-of.csv"  # a source that has no bar for NEXT
    pd.read_csv(prices_csv, index_col="date", parse_dates=True).loc[: str(AS_OF)].to_csv(truncated, index_label="date")
    failed = _deployment_run(stack, "daily-forecast/daily", f"source=csv:{truncated}", f"as_of={NEXT}",
                             "preset=smoke", f"horizon={HORIZON}")  # fmt: skip
    assert failed.returncode != 0, describe(failed)
    (envelope,) = _wait_for_mail(stack, 1) or pytest.fail(f"no alert arrived\n{stack.logs()}", pytrace=False)
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == f"[tsla-forecast] FAILED: TSLA {NEXT} at load_prices"
    body = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert f"ticker: TSLA\nday:    {NEXT}\nstep:   load_prices\nerror:  FinalBarMissingError: " in body
    assert f"has no final bar for TSLA on {NEXT} (newest: {AS_OF})" in body
    link = body.split("flow run: ", 1)[1].splitlines()[0]
    assert link == f"{stack.api_url.removesuffix('/api')}/runs/flow-run/{flow_run_id(failed.stdout)}"


def test_the_weekly_retrain_deployment_registers_a_full_fit_in_the_registry(stack: Stack, prices_csv: Path):
    from db.repository import Repository

    result = _deployment_run(stack, "retrain-model/weekly-retrain", f"source=csv:{prices_csv}", f"as_of={AS_OF}",
                             "preset=smoke", f"horizon={HORIZON}")  # fmt: skip
    assert result.returncode == 0, f"{describe(result)}\n{stack.logs()}"
    repo = Repository.from_url(stack.db_url)
    try:
        run = repo.find_run("retrain", "TSLA", AS_OF)
        assert run is not None and run.flow_run_id == flow_run_id(result.stdout)
        assert run.details["decision"] == "full retrain requested"
        version = repo.model_version(run.details["candidate_version_id"])
        assert version.kind == "full" and version.train_end <= AS_OF
        assert version.config["full_fit_as_of"] == str(AS_OF) and version.artifact_sha256
        champion = repo.champion("TSLA")
        assert (champion.id == version.id) is run.details["promoted"], run.details["gate"]
        assert repo.run_forecasts("TSLA", AS_OF, version.id).empty, "a retrain publishes no forecasts"
    finally:
        repo.dispose()


def test_status_reads_the_next_scheduled_run_from_the_prefect_api(stack: Stack):
    scheduled = stack.check(PREFECT, "deployment", "run", "daily-forecast/daily", "--start-in", "in 2 days")
    match = re.search(r"Scheduled start time: (\S+ \S+)", scheduled.stdout)
    assert match, scheduled.stdout
    status = stack.cli(sys.executable, "-m", "flows.cli", "status", "--json")
    assert status.returncode == 1, "TSLA is months behind today: unhealthy"
    expected = dt.datetime.fromisoformat(json.loads(status.stdout)["next_scheduled_run"])
    assert f"{expected.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}" == match.group(1)
