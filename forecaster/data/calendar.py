"""NYSE trading calendar (exchange_calendars' XNYS): sessions, next sessions and bar finality."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from functools import lru_cache
from typing import TypeAlias

import exchange_calendars as xcals
import pandas as pd

from forecaster.errors import ConfigError

logger = logging.getLogger("forecaster.data.calendar")
DateLike: TypeAlias = str | dt.date | pd.Timestamp


@lru_cache(maxsize=1)
def _xnys() -> xcals.ExchangeCalendar:
    with warnings.catch_warnings():  # exchange_calendars trips a pandas 3.1 deprecation warning
        warnings.simplefilter("ignore")
        return xcals.get_calendar("XNYS", start="2000-01-01")


def bounds() -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last session the calendar knows (2000-01-03 .. about a year from today)."""
    return _xnys().first_session, _xnys().last_session


def _day(value: DateLike) -> pd.Timestamp:
    return (
        pd.Timestamp(value).tz_localize(None).normalize()
        if pd.Timestamp(value).tzinfo
        else pd.Timestamp(value).normalize()
    )


def is_session(day: DateLike) -> bool:
    """True when ``day`` is an NYSE trading session."""
    return bool(_xnys().is_session(_day(day)))


def sessions(start: DateLike, end: DateLike) -> pd.DatetimeIndex:
    """All NYSE sessions in ``[start, end]`` (tz-naive midnight timestamps)."""
    start_, end_ = _day(start), _day(end)
    if start_ > end_:
        return pd.DatetimeIndex([], name="date")
    return pd.DatetimeIndex(_xnys().sessions_in_range(start_, end_), name="date")


def next_sessions(after: DateLike, n: int) -> pd.DatetimeIndex:
    """The ``n`` NYSE sessions strictly after ``after``.

    >>> list(next_sessions("2024-12-23", 2).strftime("%Y-%m-%d"))
    ['2024-12-24', '2024-12-26']
    """
    cal = _xnys()
    day = _day(after)
    first = cal.date_to_session(day, direction="next")
    if first == day:
        first = cal.next_session(day)
    return pd.DatetimeIndex(cal.sessions_window(first, n), name="date")


def previous_session(day: DateLike) -> pd.Timestamp:
    """The last session strictly before ``day``."""
    cal = _xnys()
    d = _day(day)
    prev = cal.date_to_session(d, direction="previous")
    return cal.previous_session(d) if prev == d else prev


def session_close(day: DateLike) -> pd.Timestamp:
    """The UTC close time of session ``day`` (16:00 New York, earlier on half days)."""
    return _xnys().session_close(_day(day))


def is_bar_final(day: DateLike, now: pd.Timestamp | None = None) -> bool:
    """True when the daily bar of session ``day`` is final: the session has closed (plus 15 min of settling)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    if not is_session(day):
        return False
    return bool(now >= session_close(day) + pd.Timedelta(minutes=15))


def last_completed_session(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The most recent session whose bar is final at ``now`` (default: the current time)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    day = now.tz_convert("America/New_York").tz_localize(None).normalize()
    candidate = day if is_session(day) else previous_session(day)
    return candidate if is_bar_final(candidate, now) else previous_session(candidate)


def resolve_as_of(as_of: str | dt.date | None) -> dt.date | None:
    """The session to forecast from: ``as_of`` or the last completed NYSE session; None on a non-trading day.

    Raises:
        ConfigError: ``as_of`` is after the last completed session (it has no final bar yet).
    """
    latest = last_completed_session().date()
    if as_of is None:
        return latest
    day = pd.Timestamp(as_of).date()
    if day > latest:
        raise ConfigError(f"as_of {day} has no final bar yet: the last completed NYSE session is {latest}")
    if not is_session(day):
        logger.info("%s is not an NYSE trading day: nothing to do", day)
        return None
    return day
