"""``backfill`` is exactly a sequence of daily runs; it resumes where it stopped (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from db import migrate
from db.repository import Repository
from flows.backfill import backfill
from flows.daily import daily_forecast
from forecaster.data.calendar import sessions
from tests.db.helpers import count_rows, table_snapshot
from tests.flows.conftest import DAY1, SMOKE_ARGS, HomeFactory

START, END = DAY1, dt.date(2024, 6, 7)
ARGS = SMOKE_ARGS


def _fresh_home(path, monkeypatch) -> Repository:
    """An SQLite home at ``path`` (tests/flows/test_catchup.py uses it; the tests here use ``make_home``)."""
    path.mkdir()
    monkeypatch.setenv("TSLA_FORECAST_HOME", str(path))
    url = f"sqlite:///{path / 'forecast.db'}"
    migrate.upgrade(url)
    return Repository.from_url(url)


def _comparable(repo: Repository) -> dict[str, list]:
    """Rows that must match between two histories: all but ids, timestamps and bundle files (zips stamp times)."""
    forecasts = repo.recent_outcomes("TSLA", last=10_000)
    versions = [repo.model_version(int(i)) for i in sorted(forecasts["model_version_id"].unique())]
    return {
        "forecasts": forecasts.drop(columns=["forecast_id", "run_id", "model_version_id"]).to_dict("records"),
        "versions": [(v.kind, v.status, v.train_start, v.train_end, v.metrics) for v in versions],
        "prices": [row[:7] for row in table_snapshot(repo, "prices")],
        "runs": [(r[2], r[4], r[5]) for r in table_snapshot(repo, "runs")],  # kind, as_of, status
    }


def test_backfill_equals_running_daily_on_each_day(tmp_path: Path, make_home: HomeFactory) -> None:
    filled = make_home(tmp_path / "backfill")
    counts = backfill(start=START, end=END, **ARGS)
    assert counts["succeeded"] == 5
    by_backfill = _comparable(filled)
    filled.dispose()

    daily = make_home(tmp_path / "daily")
    for day in sessions(START, END):
        assert daily_forecast(as_of=day.date(), **ARGS)[0]["status"] == "succeeded"
    by_daily = _comparable(daily)
    daily.dispose()
    assert by_backfill == by_daily
    assert len(by_daily["forecasts"]) == 5 * 3 - (1 + 2 + 3), "matured forecasts only: targets up to END"


def test_a_stopped_backfill_resumes_where_it_stopped(tmp_path: Path, make_home: HomeFactory) -> None:
    repo = make_home(tmp_path / "home")
    assert backfill(start=START, end=dt.date(2024, 6, 4), **ARGS)["succeeded"] == 2  # "killed" after two days
    counts = backfill(start=START, end=END, **ARGS)
    assert counts == {"succeeded": 3, "already_done": 2}
    assert count_rows(repo)["runs"] == 5
    repo.dispose()
