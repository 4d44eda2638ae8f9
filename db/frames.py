"""Conversions between pandas frames and database rows. No SQL and no metric here."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

OUTCOME_FLOATS = (
    "point", "lo80", "hi80", "lo95", "hi95", "naive", "actual",
    "error", "abs_error", "naive_error", "naive_abs_error", "in80", "in95",
)  # fmt: skip


def outcome_frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Rows of ``forecast_outcomes`` as a frame: dates as datetime64, NULLs as NaN."""
    frame = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    for column in ("as_of", "target_date"):
        frame[column] = pd.to_datetime(frame[column])
    for column in OUTCOME_FLOATS:
        frame[column] = frame[column].astype(float)
    return frame


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def to_dates(values: Any) -> list[dt.date]:
    """Datetime-like values as ``datetime.date`` objects."""
    return [ts.date() for ts in pd.to_datetime(pd.Index(values))]


def as_date(value: Any) -> dt.date | None:
    """A date, timestamp or ISO string as a ``datetime.date`` (``None`` stays ``None``)."""
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    return pd.Timestamp(value).date()


def to_floats(values: Any) -> list[float | None]:
    """Numbers as Python floats, NaN as ``None`` (SQL NULL)."""
    return [to_float(v) for v in np.asarray(values, dtype=float)]


def to_float(value: Any) -> float | None:
    """One number as a Python float, NaN as ``None``."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
