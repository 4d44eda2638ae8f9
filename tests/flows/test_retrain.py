"""retrain-model under a Prefect test harness, on SQLite and PostgreSQL: a full retrain that trains and registers
a model version (with its artefact) but writes no forecasts: the champion when there is none, else a challenger that
the daily runs grade after its shadow window; one run per (ticker, as_of), apart from the daily run of that day; a
fault leaves only a failed run row.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from db.repository import Repository
from flows.daily import daily_forecast
from flows.retrain import retrain_model
from forecaster.data.calendar import last_completed_session
from tests.db.helpers import count_rows, table_snapshot
from tests.flows.conftest import DAY1, ON_DAY1, SMOKE_ARGS, Day1, db_state, store_digest

DAY2, DAY3, SATURDAY = dt.date(2024, 6, 4), dt.date(2024, 6, 5), dt.date(2024, 6, 8)
FRIDAY, SUNDAY_6AM = dt.date(2024, 6, 7), pd.Timestamp("2024-06-09 06:00", tz="America/New_York")  # the weekly cron
ARGS = SMOKE_ARGS
SCHEDULED_SETTINGS = {"TICKERS": '["TSLA", "NVDA"]', "SOURCE": "synthetic:3", "PRESET": "smoke", "HORIZON": "3"}


def retrain(as_of: dt.date, **kw: object) -> list[dict]:
    return retrain_model(as_of=as_of, **(ARGS | kw))


def daily(as_of: dt.date) -> dict:
    return daily_forecast(as_of=as_of, **ARGS)[0]


def _everything(repo: Repository, home: Path) -> tuple[dict, dict, dict]:
    """Rows, row counts (runs and artefacts included) and model-store files, for "nothing changed" checks."""
    return db_state(repo), count_rows(repo), store_digest(home)


def _distinct(repo: Repository, columns: str, table: str) -> set[tuple]:
    with repo.engine.connect() as conn:
        return {tuple(row) for row in conn.execute(sa.text(f"SELECT DISTINCT {columns} FROM {table}"))}


def test_the_weekly_retrain_registers_a_champion_per_ticker_once(
    backend_repo: Repository, backend_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weekly deployment passes no parameters: every one comes from the settings, as_of is the last session."""
    repo = backend_repo
    sunday_clock = functools.partial(last_completed_session, now=SUNDAY_6AM)
    for where in ("forecaster.data.calendar", "flows.jobs.daily"):  # resolve_as_of's and the job's clock
        monkeypatch.setattr(f"{where}.last_completed_session", sunday_clock)
    for name, value in SCHEDULED_SETTINGS.items():
        monkeypatch.setenv(f"TSLA_FORECAST_{name}", value)

    results = retrain_model()
    assert [(r["ticker"], r["as_of"], r["status"]) for r in results] == [
        ("TSLA", str(FRIDAY), "succeeded"),
        ("NVDA", str(FRIDAY), "succeeded"),
    ]
    for result in results:
        assert result["decision"] == "full retrain requested"
        assert result["promoted"] and result["gate"].startswith("no champion yet")  # nothing to grade against
        version = repo.model_version(result["candidate_version_id"])
        assert (version.kind, version.status, version.parent_id, version.preset) == ("full", "champion", None, "smoke")
        assert version.config["horizon"] == 3 and version.train_end == FRIDAY
        assert repo.champion(result["ticker"]).id == version.id == result["model_version_id"]
        assert repo.artifact_data(version.id), "the artefact is stored with the version"
        run = repo.run(result["run_id"])
        assert (run.kind, run.status, run.as_of, run.model_version_id) == ("retrain", "succeeded", FRIDAY, version.id)
        assert run.details["promoted"] is True and run.details["candidate_version_id"] == version.id
    counts = count_rows(repo)
    assert counts["forecasts"] == 0, "a retrain writes no forecasts"
    assert (counts["runs"], counts["model_versions"], counts["model_artifacts"]) == (2, 2, 2)
    assert _distinct(repo, "ticker, source", "prices") == {("TSLA", "synthetic:3"), ("NVDA", "synthetic:3")}
    assert _distinct(repo, "scope", "metrics") == {("validation",)}, "only validation scores: nothing was live"

    before = _everything(repo, backend_home)
    again = retrain_model()
    assert [(r["status"], r["run_id"], r["model_version_id"]) for r in again] == [
        ("already_done", r["run_id"], r["model_version_id"]) for r in results
    ]
    assert _everything(repo, backend_home) == before, "a second retrain of the same session changes nothing"


def _retrain_then_daily(day1: Day1, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict, list[dict]]:
    """DAY1's daily run (the ``day1`` fixture's: a first full fit, which reads no gate setting), a retrain the same
    day (a full challenger), then daily runs until it is graded."""
    repo, first = day1.repo, day1.first
    monkeypatch.setenv("TSLA_FORECAST_GATE_WINDOW", "2")
    forecasts = table_snapshot(repo, "forecasts")
    result = retrain(DAY1)[0]
    assert result["status"] == "succeeded", "a retrain is its own run key, beside the daily run of the same day"
    assert result["decision"] == "full retrain requested" and result["gate"] == "" and not result["promoted"]
    challenger = repo.model_version(result["candidate_version_id"])
    assert (challenger.kind, challenger.status, challenger.parent_id) == (
        "full",
        "candidate",
        first["model_version_id"],
    )
    assert table_snapshot(repo, "forecasts") == forecasts, "the day's published forecasts are untouched"
    assert daily(DAY1)["status"] == "already_done", "and the daily run of that day is still done"
    return first, result, [daily(DAY2), daily(DAY3)]


@ON_DAY1
def test_a_retrained_challenger_the_gate_rejects_is_retired_and_the_champion_keeps_forecasting(
    day1: Day1, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = day1.repo
    monkeypatch.setenv("TSLA_FORECAST_GATE_MAX_U2", "0")  # the gate rejects every challenger
    first, retrained, (second, third) = _retrain_then_daily(day1, monkeypatch)
    assert second["gate"] == "" and second["candidate_version_id"] is None, "one session in shadow: not graded yet"
    assert third["gate"].startswith("rejected") and not third["promoted"]
    assert second["model_version_id"] == third["model_version_id"] == first["model_version_id"]
    assert repo.model_version(retrained["candidate_version_id"]).status == "retired"
    assert repo.champion("TSLA").id == first["model_version_id"]


@ON_DAY1
def test_a_retrained_challenger_the_gate_promotes_forecasts_and_is_fine_tuned_next(
    day1: Day1, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = day1.repo
    monkeypatch.setenv("TSLA_FORECAST_GATE_TOLERANCE", "1e6")  # the gate passes every challenger
    monkeypatch.setenv("TSLA_FORECAST_GATE_MAX_U2", "1e6")
    first, retrained, (second, third) = _retrain_then_daily(day1, monkeypatch)
    new = retrained["candidate_version_id"]
    assert third["promoted"] and third["gate"].startswith("promoted")
    assert third["model_version_id"] == new == repo.champion("TSLA").id, "it forecasts from the day it is promoted"
    assert second["model_version_id"] == first["model_version_id"]
    assert repo.model_version(first["model_version_id"]).status == "retired"
    finetuned = repo.model_version(third["candidate_version_id"])
    assert (finetuned.kind, finetuned.parent_id, finetuned.status) == ("finetune", new, "candidate")
    assert finetuned.config["full_fit_as_of"] == str(DAY1)
    assert count_rows(repo)["forecasts"] == 9


def test_a_non_trading_day_retrains_nothing(backend_repo: Repository, backend_home: Path) -> None:
    assert retrain(SATURDAY) == []
    assert all(n == 0 for n in count_rows(backend_repo).values())
    assert store_digest(backend_home) == {}


def _fail(*_a: object, **_k: object) -> None:
    raise RuntimeError("injected fault")


def test_a_fault_while_registering_leaves_only_a_failed_run_row(backend_repo: Repository, backend_home: Path) -> None:
    """The fault strikes inside the final transaction, after the prices were written in it."""
    repo = backend_repo
    before = _everything(repo, backend_home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("db.repository.UnitOfWork.add_model_version", _fail)
        with pytest.raises(RuntimeError, match="injected fault"):
            retrain(DAY1)
    rows, counts, files = before
    assert db_state(repo) == rows and store_digest(backend_home) == files
    assert count_rows(repo) == counts | {"runs": 1}
    failed = repo.find_run("retrain", "TSLA", DAY1, status="failed")
    assert failed is not None and "injected fault" in failed.error
