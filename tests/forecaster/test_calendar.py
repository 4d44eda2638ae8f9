"""NYSE calendar: sessions, next/previous sessions over holidays, and which daily bars are final."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from forecaster.data.calendar import (
    is_bar_final,
    is_session,
    last_completed_session,
    next_sessions,
    previous_session,
    session_close,
    sessions,
)


def days(index: pd.DatetimeIndex) -> list[str]:
    return index.strftime("%Y-%m-%d").tolist()


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York")


@pytest.mark.parametrize(
    ("day", "expected"),
    [("2024-12-24", True), ("2024-12-25", False), ("2024-12-28", False), (dt.date(2024, 7, 4), False)],
)
def test_is_session_knows_weekends_and_holidays(day, expected):
    assert is_session(day) is expected


def test_sessions_are_inclusive_and_skip_holidays():
    got = sessions("2024-12-20", "2024-12-27")
    assert days(got) == ["2024-12-20", "2024-12-23", "2024-12-24", "2024-12-26", "2024-12-27"]
    assert got.name == "date"
    assert got.tz is None


def test_sessions_with_start_after_end_are_empty():
    assert len(sessions("2024-12-27", "2024-12-20")) == 0


def test_next_sessions_skip_christmas():
    assert days(next_sessions("2024-12-24", 2)) == ["2024-12-26", "2024-12-27"]
    assert days(next_sessions("2024-12-23", 2)) == ["2024-12-24", "2024-12-26"]


def test_next_sessions_from_a_weekend_or_holiday_start_at_the_next_session():
    assert days(next_sessions("2024-12-28", 1)) == ["2024-12-30"]
    assert days(next_sessions("2024-12-25", 1)) == ["2024-12-26"]


def test_previous_session_skips_holidays_and_weekends():
    assert previous_session("2024-12-26") == pd.Timestamp("2024-12-24")
    assert previous_session("2024-12-30") == pd.Timestamp("2024-12-27")
    assert previous_session("2024-12-29") == pd.Timestamp("2024-12-27")


def test_session_close_is_utc_and_early_on_half_days():
    assert session_close("2024-12-23") == pd.Timestamp("2024-12-23 21:00", tz="UTC")
    assert session_close("2024-07-01") == pd.Timestamp("2024-07-01 20:00", tz="UTC")
    assert session_close("2024-12-24") == pd.Timestamp("2024-12-24 18:00", tz="UTC")


@pytest.mark.parametrize(
    ("now", "final"),
    [("2024-12-23 16:14", False), ("2024-12-23 16:15", True), ("2024-12-22 12:00", False)],
)
def test_bar_is_final_fifteen_minutes_after_the_close(now, final):
    assert is_bar_final("2024-12-23", ny(now)) is final


def test_half_day_bar_is_final_after_the_early_close():
    assert is_bar_final("2024-12-24", ny("2024-12-24 13:15")) is True


def test_bar_of_a_non_session_is_never_final():
    assert is_bar_final("2024-12-25", ny("2025-01-10 12:00")) is False


def test_naive_now_is_taken_as_utc():
    assert is_bar_final("2024-12-23", pd.Timestamp("2024-12-23 21:15")) is True
    assert is_bar_final("2024-12-23", pd.Timestamp("2024-12-23 21:14")) is False


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2024-12-23 10:00", "2024-12-20"),  # Monday before the close: Friday's bar
        ("2024-12-23 16:30", "2024-12-23"),  # Monday after the close
        ("2024-12-28 12:00", "2024-12-27"),  # Saturday
        ("2024-12-29 23:59", "2024-12-27"),  # Sunday night
        ("2024-12-25 12:00", "2024-12-24"),  # Christmas: the half day before
        ("2024-12-26 09:00", "2024-12-24"),  # the morning after a holiday
    ],
)
def test_last_completed_session(now, expected):
    assert last_completed_session(ny(now)) == pd.Timestamp(expected)


def test_last_completed_session_late_evening_in_new_york_is_the_new_york_day():
    # 2024-12-24 01:00 UTC is still Monday 2024-12-23 20:00 in New York
    assert last_completed_session(pd.Timestamp("2024-12-24 01:00", tz="UTC")) == pd.Timestamp("2024-12-23")
