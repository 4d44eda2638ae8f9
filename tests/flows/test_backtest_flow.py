"""The ``backtest`` flow stores its run, metrics and forecasts with scope ``backtest``; reruns store nothing new."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from flows.backtest import backtest
from tests.db.helpers import count_rows
from tests.flows.conftest import db_state, store_digest

START, END = dt.date(2024, 6, 3), dt.date(2024, 6, 14)  # 10 sessions
ARGS = {"start": START, "end": END, "source": "synthetic:3", "preset": "smoke", "horizon": 3, "refit_every": 5}
MODELS = {"lstm", "naive", "drift", "moving_average", "range_ewma", "garch"}


@pytest.fixture
def summary(repo, tmp_path):
    return backtest(**ARGS, output=str(tmp_path / "bt"))


def test_backtest_run_metrics_and_forecasts_are_stored_with_scope_backtest(repo, summary, tmp_path):
    run = repo.run(summary["run_id"])
    assert (run.kind, run.status, run.as_of) == ("backtest", "succeeded", END)
    assert run.details["params"]["refit_every"] == 5 and run.details["summary"]["n_forecasts"] == 10
    rows = _query(repo, "SELECT model, horizon, run_id FROM forecasts WHERE scope = 'backtest'")
    assert {r[0] for r in rows} == MODELS and {r[2] for r in rows} == {run.id}
    assert len(rows) == 10 * 3 * len(MODELS), "every origin, horizon and model"
    assert repo.recent_outcomes("TSLA", scope="live").empty, "backtests stay out of the live history"
    version = repo.model_version(run.model_version_id)
    assert version.config["scope"] == "backtest" and version.status == "candidate"
    assert repo.champion("TSLA") is None, "a backtest never promotes a model"
    stored = dict(_query(repo, f"SELECT name, value FROM metrics WHERE run_id = {run.id} AND scope = 'backtest'"))
    assert stored["lstm.h1.rmse"] == pytest.approx(summary["lstm"]["rmse"])
    assert stored["naive.h1.rmse"] == pytest.approx(summary["naive"]["rmse"])
    assert stored["lstm.h3.u2"] == pytest.approx(summary["by_horizon"]["lstm"][3]["u2"])
    for name in ("winkler80", "pinball", "call_accuracy", "coverage80_wild", "dm_stat", "dm_pvalue"):
        assert stored[f"lstm.h2.{name}"] == pytest.approx(summary["by_horizon"]["lstm"][2][name]), name
    assert json.loads((tmp_path / "bt" / "summary.json").read_text())["lstm"]["rmse"] == summary["lstm"]["rmse"]


def test_the_same_backtest_again_changes_nothing(repo, home, summary, tmp_path):
    before, files, runs = db_state(repo), store_digest(home), count_rows(repo)["runs"]
    again = backtest(**ARGS, output=str(tmp_path / "bt2"))
    assert again["status"] == "already_done" and again["run_id"] == summary["run_id"]
    assert again["lstm"]["rmse"] == summary["lstm"]["rmse"]
    rebuilt = json.loads((tmp_path / "bt2" / "summary.json").read_text())  # a new --output folder is written anyway
    assert (
        rebuilt["lstm"] == pytest.approx(summary["lstm"], nan_ok=True) and (tmp_path / "bt2" / "forecasts.csv").exists()
    )
    assert db_state(repo) == before and store_digest(home) == files and count_rows(repo)["runs"] == runs
    other = backtest(**(ARGS | {"refit_every": 0}), output=str(tmp_path / "bt3"))
    assert other["status"] == "succeeded" and other["run_id"] != summary["run_id"], "other parameters run anew"


def test_a_failed_write_leaves_only_a_failed_run_row(repo, home, tmp_path, monkeypatch):
    def fail(*_a, **_k):
        raise RuntimeError("injected fault")

    monkeypatch.setattr("db.repository.UnitOfWork.write_metrics", fail)
    with pytest.raises(RuntimeError, match="injected fault"):
        backtest(**ARGS, output=str(tmp_path / "bt"))
    assert all(not rows for rows in db_state(repo).values())
    assert store_digest(home) == {}, "the backtest caches no bundle"
    failed = repo.find_run("backtest", "TSLA", END, status="failed")
    assert failed is not None and "injected fault" in failed.error


def _query(repo, sql: str) -> list[tuple]:
    import sqlalchemy as sa

    with repo.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def test_an_unknown_policy_is_refused_where_the_flow_builds_its_parameters():
    """The deployment passes ``policy`` as a plain string: the job's own check names it (the CLI's is its enum)."""
    from flows.jobs.backtest import BacktestParams
    from flows.settings import Settings
    from forecaster.errors import ConfigError

    with pytest.raises(ConfigError, match="policy must be production or schedule, got 'sometimes'"):
        BacktestParams.from_settings(Settings(), dt.date(2023, 3, 1), dt.date(2023, 3, 10), policy="sometimes")
