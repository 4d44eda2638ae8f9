"""The report step of daily-forecast under a Prefect test harness: a fresh install with nothing matured, the
Prefect artifacts, and a report failure that is only a warning on the (succeeded) run."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from flows.daily import daily_forecast
from tests.db.helpers import count_rows
from tests.report.checks import assert_self_contained

DAY1 = dt.date(2024, 6, 3)
ARGS = {"source": "synthetic:3", "preset": "smoke", "horizon": 3}
pytestmark = pytest.mark.reports  # every test reads what the daily run's report step made


def test_fresh_install_report_says_no_matured_forecasts_yet(prefect_api, repo, home):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    state = daily_forecast(as_of=DAY1, **ARGS, return_state=True)
    result = state.result()[0]
    assert result["report"]["warning"] is None and result["report"]["emailed"] is False
    folder = home / "reports" / str(DAY1) / "TSLA"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["skill"]["windows"][0]["n"] == 0 and summary["skill"]["windows"][0]["model"]["rmse"] is None
    assert summary["coverage_by_horizon"] == []
    text = assert_self_contained((folder / "report.html").read_text())
    assert "No matured forecasts yet." in text and "No forecast has matured yet" in text
    assert summary["model_version"]["kind"] == "full" and summary["gate"]["promoted"] is True
    assert summary["gate"]["gate_decision"].startswith("no champion yet")
    run_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=run_filter)}
    assert "No forecast has matured yet" in artifacts["report-tsla"].data
    assert artifacts["report-tsla-link"].data == f"[TSLA report {DAY1}]({(folder / 'report.html').resolve().as_uri()})"


def test_a_broken_report_is_a_warning_on_the_run_not_a_failed_run(prefect_api, repo, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("template exploded")

    monkeypatch.setattr("flows.report.archive.build_report", broken)
    state = daily_forecast(as_of=DAY1, **ARGS, return_state=True)
    assert state.is_completed()
    result = state.result()[0]
    assert result["status"] == "succeeded" and count_rows(repo)["forecasts"] == 3
    assert result["report"]["warning"] == "report failed: RuntimeError: template exploded"
    assert repo.run(result["run_id"]).details["warnings"] == ["report failed: RuntimeError: template exploded"]
