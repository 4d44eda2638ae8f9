"""Catch-up: a daily run after missed sessions replays them first, exactly as if they had run on time."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.daily import daily_forecast
from forecaster.data.calendar import sessions
from forecaster.errors import ConfigError
from tests.db.helpers import count_rows
from tests.flows.conftest import ON_DAY1
from tests.flows.test_backfill import ARGS, END, START, _comparable, _fresh_home

SQLITE = pytest.mark.parametrize("backend", ["sqlite"])  # day 1's snapshot on SQLite only, as the other tests here


@ON_DAY1
@SQLITE
def test_a_run_after_three_missed_sessions_catches_them_up_like_runs_on_time(
    day1, day1_snapshot, make_home, tmp_path_factory
):
    """Both histories start from a copy of day 1's run (START is DAY1): the late one runs END only. (That two day-1 fits
    agree is checked by test_backfill_equals_running_daily_on_each_day, which fits day 1 twice.)"""
    assert day1.first["status"] == "succeeded"
    (result,) = daily_forecast(as_of=END, **ARGS)  # the worker was down on the three sessions in between
    assert result["status"] == "succeeded"
    assert result["caught_up"] == ["2024-06-04", "2024-06-05", "2024-06-06"]
    caught_up = _comparable(day1.repo)

    on_time = make_home(tmp_path_factory.mktemp("on-time"), start=day1_snapshot)
    for day in sessions(START, END)[1:]:
        assert daily_forecast(as_of=day.date(), **ARGS)[0]["caught_up"] == []
    expected = _comparable(on_time)
    assert caught_up == expected
    assert [r[1] for r in expected["runs"]] == [d.date() for d in sessions(START, END)]


@ON_DAY1
@SQLITE
def test_more_missed_sessions_than_the_bound_fail_with_the_backfill_command(day1, monkeypatch):
    repo = day1.repo
    monkeypatch.setenv("TSLA_FORECAST_CATCHUP_MAX_SESSIONS", "2")
    before = count_rows(repo)
    with pytest.raises(ConfigError) as info:
        daily_forecast(as_of=END, **ARGS)
    assert str(info.value) == (
        "TSLA missed 3 sessions since its last succeeded daily run on 2024-06-03, more than catchup_max_sessions=2: "
        "run `tsla-forecast backfill --ticker TSLA --start 2024-06-04 --end 2024-06-06` first"
    )
    assert count_rows(repo) == before, "nothing was run"


def test_an_older_day_or_a_first_run_catches_nothing_up(tmp_path, monkeypatch):
    repo = _fresh_home(tmp_path / "home", monkeypatch)
    from flows.jobs.catchup import missed_sessions

    assert missed_sessions(repo, ["TSLA"], END, limit=10) == [], "no history yet: the first run starts it"
    daily_forecast(as_of=dt.date(2024, 6, 5), **ARGS)
    assert missed_sessions(repo, ["TSLA"], dt.date(2024, 6, 4), limit=10) == []
    assert missed_sessions(repo, ["TSLA", "NVDA"], dt.date(2024, 6, 10), limit=10) == [
        (dt.date(2024, 6, 6), "TSLA"),
        (dt.date(2024, 6, 7), "TSLA"),
    ]
    repo.dispose()
