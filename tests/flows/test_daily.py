"""daily-forecast under a Prefect test harness: the retrain sequence, gate, idempotency, calendar and faults.

Every test runs on SQLite and on PostgreSQL: ``home`` and ``repo`` are ``backend_home`` and ``backend_repo`` here.
The tests that go on from day 1 start from a copy of the home that day 1's run leaves (``day1``): that run is made
once per backend, by the first of them in their test process (they share one xdist group).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from db.repository import Repository
from flows.daily import daily_forecast
from flows.jobs.daily import finite_scores
from forecaster.evaluation.metrics import LIVE, score
from tests.db.helpers import count_rows, table_snapshot
from tests.flows.conftest import DAY1, ON_DAY1, SMOKE_ARGS, db_state, store_changes, store_digest

DAY2, SATURDAY = dt.date(2024, 6, 4), dt.date(2024, 6, 8)
ARGS = SMOKE_ARGS


@pytest.fixture
def home(backend_home: Path) -> Path:
    """The test's home, on each backend."""
    return backend_home


@pytest.fixture
def repo(backend_repo: Repository) -> Repository:
    """A repository over ``home``'s database, on each backend."""
    return backend_repo


def run(as_of, **kw):
    return daily_forecast(as_of=as_of, **(ARGS | kw))


def test_first_run_trains_fully_then_auto_fine_tunes_with_lineage(repo):
    first = run(DAY1)[0]
    assert first["status"] == "succeeded" and "no usable champion" in first["decision"]
    assert len(first["forecasts"]) == 3 and first["forecasts"][0]["target_date"] == "2024-06-04"
    second = run(DAY2)[0]
    assert "sessions from its full fit" in second["decision"]
    v1, v2 = repo.model_version(first["model_version_id"]), repo.model_version(second["candidate_version_id"])
    assert (v1.kind, v2.kind) == ("full", "finetune") and v2.parent_id == v1.id
    champion = repo.champion("TSLA")
    assert champion.id == (v2.id if second["promoted"] else v1.id)
    assert second["model_version_id"] == champion.id
    assert repo.model_version(v1.id).status == ("retired" if second["promoted"] else "champion")
    assert count_rows(repo)["forecasts"] == 6


@ON_DAY1
def test_live_scores_count_todays_close_without_a_days_lag(day1):
    repo = day1.repo
    second = run(DAY2)[0]
    assert second["live"]["n"] == 1, "DAY1's horizon-1 forecast matures with DAY2's close, fetched in this run"
    stored = finite_scores(score(repo.live_outcomes("TSLA", DAY2), metrics=LIVE))
    assert second["live"] == pytest.approx(stored), "the same as from the stored view"
    assert count_rows(repo)["prices"] > 0


@ON_DAY1
def test_rerun_same_day_changes_nothing(day1):
    repo, home = day1.repo, day1.home
    before, files, runs = db_state(repo), store_digest(home), count_rows(repo)["runs"]
    again = run(DAY1)[0]
    assert again["status"] == "already_done"
    assert db_state(repo) == before and store_digest(home) == files and count_rows(repo)["runs"] == runs


def test_non_trading_day_writes_nothing(repo, home):
    assert run(SATURDAY) == []
    assert all(n == 0 for n in count_rows(repo).values())
    assert store_digest(home) == {}


@ON_DAY1
def test_a_forced_full_retrain_registers_a_challenger_and_the_decision_is_recorded(day1):
    repo, first = day1.repo, day1.first
    result = run(DAY2, retrain="full")[0]
    assert result["decision"] == "full retrain requested" and result["gate"] == "" and not result["promoted"]
    challenger = repo.model_version(result["candidate_version_id"])
    assert (challenger.kind, challenger.status, challenger.parent_id) == (
        "full",
        "candidate",
        first["model_version_id"],
    )
    assert challenger.config["role"] == "challenger" and repo.challenger("TSLA").id == challenger.id
    assert result["model_version_id"] == first["model_version_id"], "the champion forecasts while it is in shadow"
    details = repo.run(result["run_id"]).details
    assert details["trained"] == "full" and details["gate"] is None and details["promoted"] is False
    asked = {"source": ARGS["source"], "preset": ARGS["preset"], "horizon": 3, "retrain": "full", "as_of": str(DAY2)}
    assert asked.items() <= details.items(), "a succeeded run keeps the parameters it started with"


@ON_DAY1
def test_corrupt_champion_artefact_falls_back_to_full_retrain(day1):
    repo, first = day1.repo, day1.first
    with repo.engine.begin() as conn:  # the stored archive no longer matches its sha256
        conn.execute(sa.text("UPDATE model_artifacts SET data = :data WHERE model_version_id = :id"),
                     {"data": b"corrupted", "id": first["model_version_id"]})  # fmt: skip
    second = run(DAY2)[0]
    assert second["status"] == "succeeded"
    assert "champion artefact unusable" in second["decision"]
    assert repo.model_version(second["model_version_id"]).kind == "full"


def _fail(*_a, **_k):
    raise RuntimeError("injected fault")


@pytest.mark.parametrize(
    "target",
    [
        "flows.jobs.daily.fetch_prices",  # fetch (inside the retrying Prefect task)
        "flows.jobs.daily.ensure_valid",  # validation
        "forecaster.models.lstm.LSTMForecaster.finetune",  # training
        "db.repository.UnitOfWork.upsert_forecasts",  # writing, halfway through the transaction
    ],
)
@ON_DAY1
def test_a_fault_at_any_step_leaves_only_a_failed_run_row(day1, target):
    repo, home = day1.repo, day1.home
    before, files = db_state(repo), store_digest(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(target, _fail)
        with pytest.raises(RuntimeError, match="injected fault"):
            run(DAY2)
    assert db_state(repo) == before
    assert store_changes(files, home, repo) == [], "no bundle but the verified ones of stored versions"
    failed = repo.find_run("daily", "TSLA", DAY2, status="failed")
    assert failed is not None and "injected fault" in failed.error
    assert run(DAY2)[0]["status"] == "succeeded", "a rerun after the fault succeeds"


def test_bad_prices_fail_the_run_with_the_problem_list(repo, home, tmp_path, monkeypatch):
    from forecaster.data.sources import generate_prices
    from forecaster.errors import InvalidPricesError

    prices = generate_prices(seed=1, n=400, start="2022-11-01")
    prices.iloc[100, 3] = float("nan")
    path = tmp_path / "bad.csv"
    prices.to_csv(path, index_label="date")
    with pytest.raises(InvalidPricesError, match="NaN"):
        run(DAY1, source=f"csv:{path}")
    assert count_rows(repo)["prices"] == 0 and store_digest(home) == {}


@ON_DAY1
def test_a_rejected_challenger_is_retired_the_champion_keeps_forecasting_and_a_new_one_is_trained(day1, monkeypatch):
    """Day 1 (a first full fit) reads neither setting: it has no champion to grade or to schedule from."""
    repo = day1.repo
    monkeypatch.setenv("TSLA_FORECAST_GATE_WINDOW", "2")
    monkeypatch.setenv("TSLA_FORECAST_GATE_MAX_U2", "0")  # the gate rejects every challenger
    days = [dt.date(2024, 6, d) for d in (4, 5, 6, 7)]
    results = [day1.first] + [run(day)[0] for day in days]
    trained = [repo.run(r["run_id"]).details["trained"] for r in results]
    assert trained == ["full", "finetune", None, "finetune", None], "a challenger every 2 sessions"
    graded = repo.run(results[3]["run_id"]).details
    assert graded["gate"] == "rejected" and graded["fallback"] and "exceeds 0.00" in results[3]["gate"]
    champion = results[0]["model_version_id"]
    assert {r["model_version_id"] for r in results} == {champion}, "the first model forecast every day"
    assert repo.model_version(results[1]["candidate_version_id"]).status == "retired"
    assert repo.challenger("TSLA").id == results[3]["candidate_version_id"]
    assert repo.champion("TSLA").id == champion


def _runs(repo):
    """Every run in start order (by id; PostgreSQL ids need not be 1..n)."""
    return [repo.run(row[0]) for row in table_snapshot(repo, "runs")]


def test_with_reports_off_the_run_stores_its_forecasts_and_makes_no_report(repo, home, monkeypatch, caplog):
    """``TSLA_FORECAST_REPORTS_ENABLED=false`` (what ``reports_setting`` sets in unmarked tests): the forecasts are
    stored, and no report, artifact or email is made; email left on is named as having no effect."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    monkeypatch.setenv("TSLA_FORECAST_REPORTS_ENABLED", "false")
    monkeypatch.setenv("TSLA_FORECAST_EMAIL_ENABLED", "true")  # no SMTP server: an attempt would warn on the run
    state = daily_forecast(as_of=DAY1, return_state=True, **ARGS)
    [result] = state.result()
    assert result["status"] == "succeeded" and "report" not in result, result
    assert len(repo.latest_forecasts("TSLA")) == ARGS["horizon"]
    assert not (home / "reports").exists()
    assert "warnings" not in repo.run(result["run_id"]).details
    assert "no report is made, so none is emailed" in caplog.text
    flow_run = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as prefect:
        keys = {a.key for a in prefect.read_artifacts(artifact_filter=flow_run)}
    assert "daily-forecast-summary" in keys and not any(k and k.startswith("report-") for k in keys), keys


@pytest.mark.reports
def test_one_task_run_per_ticker_the_report_and_a_files_fetch_run_inside_it(repo, home):
    """#22: a ticker's report (and the read of a file source) runs in its own ``forecast-ticker`` task, on the
    worker that forecast it, not as more task runs in the flow's process."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    state = daily_forecast(tickers=["AAA", "BBB"], as_of=DAY1, return_state=True, **ARGS)
    results = state.result()
    assert all(r["report"]["warning"] is None and r["report"]["report"] for r in results), results
    assert all((home / "reports" / str(DAY1) / t / "report.html").exists() for t in ("AAA", "BBB"))
    flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as prefect:
        names = sorted(r.name.rsplit("-", 1)[0] for r in prefect.read_task_runs(flow_run_filter=flow_run))
    assert names == ["forecast-ticker", "forecast-ticker"], names
