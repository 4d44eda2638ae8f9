"""The repository's report queries and run warnings on SQLite and PostgreSQL (the ``postgres`` mark)."""

from __future__ import annotations

import pytest

from db.engine import make_engine
from db.repository import Repository
from flows.report.data import load_report_inputs
from flows.report.render import build_summary
from tests.db.fixtures import migrated_url, postgres_template, sqlite_template  # noqa: F401 - fixtures
from tests.report.checks import assert_summary_matches_db
from tests.report.seed import seed_history


@pytest.fixture
def any_repo(migrated_url):  # noqa: F811 - the imported fixture
    engine = make_engine(migrated_url)
    yield Repository(engine)
    engine.dispose()


def test_summary_matches_sql_on_each_backend(any_repo):
    seeded = seed_history(any_repo, runs=30, n_prices=150)
    inputs = load_report_inputs(any_repo, "TSLA")
    assert inputs.as_of == seeded.days[-1] and len(inputs.prices) == 120
    assert inputs.outcomes["target_date"].min() >= inputs.prices.index[0], "outcomes of the last 120 sessions only"
    assert inputs.last_bar["date"] == seeded.days[-1] and inputs.last_bar["source"] == "synthetic:0"
    assert inputs.parent["id"] == seeded.parent_id and inputs.candidate["id"] == seeded.version_id
    assert_summary_matches_db(build_summary(inputs, drift_u2=1.1), any_repo)


def test_run_warnings_append_once_and_details_merge(any_repo):
    seeded = seed_history(any_repo, runs=2, n_prices=80)
    run_id = seeded.run_ids[seeded.days[-1]]
    assert any_repo.record_run_warning(run_id, "first") == ["first"]
    assert any_repo.record_run_warning(run_id, "second") == ["first", "second"]
    assert any_repo.record_run_warning(run_id, "first") == ["second", "first"], "a repeat moves to the end, once"
    details = any_repo.merge_run_details(run_id, {"email": {"sent_at": "2024-12-20T22:00:00+00:00"}})
    assert details["warnings"] == ["second", "first"] and details["gate"].startswith("kept champion")
    assert any_repo.run(run_id).details == details
    with pytest.raises(ValueError, match="run 999999 does not exist"):
        any_repo.record_run_warning(999999, "x")


def test_latest_run_respects_until_and_status(any_repo):
    seeded = seed_history(any_repo, runs=5, n_prices=80)
    assert any_repo.latest_run("daily", "TSLA").as_of == seeded.days[-1]
    assert any_repo.latest_run("daily", "TSLA", until=seeded.days[-2]).as_of == seeded.days[-2]
    assert any_repo.latest_run("daily", "TSLA", status="failed") is None
    assert any_repo.latest_run("retrain", "TSLA") is None
