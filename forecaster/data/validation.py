"""Validation of price frames: one function that names every problem it finds, by date.

>>> from forecaster.data.sources import generate_prices
>>> validate_prices(generate_prices(seed=0, n=100))
[]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster import PRICE_COLUMNS
from forecaster.data.calendar import bounds, sessions
from forecaster.errors import InvalidPricesError

PRICES = ("open", "high", "low", "close")
REL_TOL = 1e-6  # float rounding allowed in the OHLC order checks
# Largest close-to-close move taken as real: |log return| 0.4 is +49% / -33%. TSLA's largest day 2010-2024 was 0.24;
# a 2:1 split is 0.69 and a 3:1 split 1.10, so a jump beyond this means prices in two units (an unapplied split).
MAX_LOG_MOVE = 0.4


@dataclass(frozen=True)
class Problem:
    """One problem in a price frame: where (date, column), the offending value and what is wrong."""

    date: pd.Timestamp | None
    column: str | None
    value: object
    message: str

    def __str__(self) -> str:
        where = [] if self.date is None else [self.date.strftime("%Y-%m-%d")]
        if self.column is not None:
            where.append(self.column if self.value is None else f"{self.column}={_fmt(self.value)}")
        return f"{' '.join(where)}: {self.message}" if where else self.message


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def validate_prices(
    frame: pd.DataFrame,
    *,
    max_gap_sessions: int | None = 5,
    calendar_check: bool = True,
    max_log_move: float | None = MAX_LOG_MOVE,
) -> list[Problem]:
    """Every problem in a price frame (empty list when it is clean), ordered by date.

    Checks: required columns (if any is missing, nothing else is checked), rows present, a tz-naive midnight
    ``DatetimeIndex``, NaN/inf values, non-positive prices, negative volume, ``high < low``, open and close
    outside ``[low, high]`` (relative tolerance 1e-6), duplicate and unsorted dates, gaps of more than
    ``max_gap_sessions`` NYSE sessions (``None`` disables), with ``calendar_check`` rows dated on days that are
    not NYSE sessions, and close-to-close jumps beyond ``max_log_move`` in log terms (``None`` disables): a price
    series in two units, such as history that a split re-adjusted only in part.
    """
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if missing:
        return [Problem(None, c, None, "missing required column") for c in missing]
    if len(frame) == 0:
        return [Problem(None, None, None, "no rows: the price frame is empty")]
    dates, problems = _check_index(frame.index)
    values = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64") for c in PRICE_COLUMNS}
    problems += _check_values(frame, values, dates)
    problems += _check_ohlc_order(values, dates)
    if isinstance(frame.index, pd.DatetimeIndex):
        problems += _check_order(dates)
        problems += _check_calendar(dates, max_gap_sessions, calendar_check)
        if max_log_move is not None and not problems:
            problems += _check_jumps(values["close"], dates, max_log_move)
    return sorted(problems, key=lambda p: (p.date is not None, pd.Timestamp.min if p.date is None else p.date))


def ensure_valid(frame: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
    """``frame`` unchanged if :func:`validate_prices` finds nothing; otherwise raise InvalidPricesError."""
    problems = validate_prices(frame, **kwargs)  # type: ignore[arg-type]
    if problems:
        raise InvalidPricesError(problems)
    return frame


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, for the CLI."""
    return "\n".join(str(p) for p in problems)


# --------------------------------------------------------------------------------------------- checks


def _check_index(index: pd.Index) -> tuple[pd.DatetimeIndex, list[Problem]]:
    """Dates of the rows (NaT where unknown), and problems with the index itself."""
    problems: list[Problem] = []
    if not isinstance(index, pd.DatetimeIndex):
        problems.append(Problem(None, None, None, f"index is not a DatetimeIndex (got {index.dtype})"))
        if index.dtype != object and not pd.api.types.is_string_dtype(index.dtype):
            return pd.DatetimeIndex([pd.NaT] * len(index)), problems
        return pd.DatetimeIndex(pd.to_datetime(index, errors="coerce", format="mixed")), problems
    dates = index
    if dates.tz is not None:
        problems.append(Problem(None, None, None, f"index is tz-aware ({dates.tz}); expected tz-naive dates"))
        dates = dates.tz_localize(None)
    for pos in np.flatnonzero(dates.isna()):
        problems.append(Problem(None, None, None, f"row {pos}: missing date (NaT)"))
    for pos in np.flatnonzero(dates.notna() & (dates != dates.normalize())):
        problems.append(Problem(dates[pos], None, None, f"time of day {dates[pos].time()} on a daily bar"))
    return dates, problems


def _at(dates: pd.DatetimeIndex, pos: int | np.integer) -> pd.Timestamp | None:
    day = dates[pos]
    return None if pd.isna(day) else day


def _check_values(frame: pd.DataFrame, values: dict[str, np.ndarray], dates: pd.DatetimeIndex) -> list[Problem]:
    """Non-numbers, NaN/inf, non-positive prices and negative volume."""
    problems: list[Problem] = []
    for col, v in values.items():
        raw = frame[col].to_numpy()
        for pos in np.flatnonzero(np.isnan(v)):
            not_number = not pd.isna(raw[pos])
            value = raw[pos] if not_number else math.nan
            problems.append(Problem(_at(dates, pos), col, value, "not a number" if not_number else "NaN value"))
        for pos in np.flatnonzero(np.isinf(v)):
            problems.append(Problem(_at(dates, pos), col, float(v[pos]), "infinite value"))
        with np.errstate(invalid="ignore"):
            bad = v < 0 if col == "volume" else v <= 0
        message = "negative volume" if col == "volume" else "non-positive price"
        for pos in np.flatnonzero(bad):
            problems.append(Problem(_at(dates, pos), col, float(v[pos]), message))
    return problems


def _check_ohlc_order(values: dict[str, np.ndarray], dates: pd.DatetimeIndex) -> list[Problem]:
    """``high >= low``, and open and close inside ``[low, high]``, up to float rounding."""
    high, low = values["high"], values["low"]
    problems: list[Problem] = []
    with np.errstate(invalid="ignore"):
        inverted = high < low * (1 - REL_TOL)
        for pos in np.flatnonzero(inverted):
            problems.append(Problem(_at(dates, pos), "high", float(high[pos]), f"high < low (low={float(low[pos])!r})"))
        for col in ("open", "close"):
            v = values[col]
            outside = ~inverted & ((v > high * (1 + REL_TOL)) | (v < low * (1 - REL_TOL)))
            for pos in np.flatnonzero(outside):
                message = f"{col} outside [low, high] = [{float(low[pos])!r}, {float(high[pos])!r}]"
                problems.append(Problem(_at(dates, pos), col, float(v[pos]), message))
    return problems


def _check_order(dates: pd.DatetimeIndex) -> list[Problem]:
    """Duplicate dates, and dates earlier than the row before them."""
    problems: list[Problem] = []
    days = dates.normalize()
    counts = days.value_counts()
    for pos in np.flatnonzero(days.duplicated(keep="first") & days.notna()):
        problems.append(Problem(days[pos], None, None, f"duplicate date ({counts[days[pos]]} rows)"))
    ns = days.asi8
    valid = days.notna()
    for pos in np.flatnonzero((ns[1:] < ns[:-1]) & valid[1:] & valid[:-1]) + 1:
        previous = days[pos - 1].strftime("%Y-%m-%d")
        problems.append(Problem(days[pos], None, None, f"dates not sorted: comes after {previous}"))
    return problems


def _check_calendar(dates: pd.DatetimeIndex, max_gap_sessions: int | None, calendar_check: bool) -> list[Problem]:
    """Rows on non-session days, and gaps of more than ``max_gap_sessions`` NYSE sessions between rows."""
    first, last = bounds()
    days = dates[dates.notna()].normalize()
    days = days[(days >= first) & (days <= last)]  # outside it, we cannot judge
    if len(days) == 0:
        return []
    known = sessions(days.min(), days.max()).as_unit("ns").asi8
    unique = np.unique(days.as_unit("ns").asi8)
    problems: list[Problem] = []
    if calendar_check:
        pos = np.searchsorted(known, unique)
        on_session = (pos < len(known)) & (known[np.minimum(pos, len(known) - 1)] == unique)
        for value in unique[~on_session]:
            day = pd.Timestamp(value)
            problems.append(Problem(day, None, None, f"not an NYSE session ({day.day_name()})"))
    if max_gap_sessions is not None and len(unique) > 1:
        between = np.searchsorted(known, unique[1:], "left") - np.searchsorted(known, unique[:-1], "right")
        for i in np.flatnonzero(between > max_gap_sessions):
            day, before = pd.Timestamp(unique[i + 1]), pd.Timestamp(unique[i]).strftime("%Y-%m-%d")
            message = f"gap: {between[i]} NYSE sessions missing since {before} (max {max_gap_sessions})"
            problems.append(Problem(day, None, None, message))
    return problems


def _check_jumps(close: np.ndarray, dates: pd.DatetimeIndex, max_log_move: float) -> list[Problem]:
    """Close-to-close moves larger than ``max_log_move`` (log terms), named by the date of the later close."""
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.diff(np.log(close))
    problems: list[Problem] = []
    for pos in np.flatnonzero(np.abs(moves) > max_log_move) + 1:
        ratio = float(close[pos - 1] / close[pos])
        message = (
            f"jump: close moved {np.expm1(moves[pos - 1]):+.0%} from {close[pos - 1]:.6g} on "
            f"{dates[pos - 1]:%Y-%m-%d} (ratio {ratio:.4g}); history in two units, e.g. a split not applied to it"
        )
        problems.append(Problem(dates[pos], "close", float(close[pos]), message))
    return problems
