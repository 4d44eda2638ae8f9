"""Restated history: detect that a source re-adjusted bars we already store, and describe the change.

yfinance returns split-adjusted prices, so after a split Yahoo divides every earlier bar by the split ratio. The
daily job compares the bars it fetched with the stored ones on the dates they share; when they differ, it fetches
the whole history again and replaces the stored prices. :func:`price_revisions` describes that replacement as
runs of dates with one adjustment factor (new close / old close), which is also the factor that brings a forecast
made on those dates into the new units.

>>> import pandas as pd
>>> old = pd.DataFrame({"close": [30.0, 33.0, 36.0]}, index=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]))
>>> [(str(r.first_date), str(r.last_date), round(r.ratio, 6)) for r in price_revisions(old, old / 3)]
[('2024-01-02', '2024-01-04', 0.333333)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

REL_TOL = 1e-4  # relative difference in a price that counts as restated (Yahoo rounds to about 1e-6)
COMPARED = ("open", "high", "low", "close")


@dataclass(frozen=True)
class PriceRevision:
    """Stored bars from ``first_date`` to ``last_date`` were restated by ``ratio`` (new close / old close)."""

    first_date: dt.date
    last_date: dt.date
    ratio: float
    sessions: int


def restated_dates(stored: pd.DataFrame, fetched: pd.DataFrame, rel_tol: float = REL_TOL) -> pd.DatetimeIndex:
    """The dates present in both frames whose open, high, low or close differ by more than ``rel_tol``."""
    common = stored.index.intersection(fetched.index)
    if len(common) == 0:
        return pd.DatetimeIndex([], name="date")
    old = stored.loc[common, list(COMPARED)].to_numpy(float)
    new = fetched.loc[common, list(COMPARED)].to_numpy(float)
    differs = (np.abs(new - old) > rel_tol * np.abs(old)).any(axis=1)
    return pd.DatetimeIndex(common[differs], name="date")


def price_revisions(stored: pd.DataFrame, restated: pd.DataFrame, rel_tol: float = REL_TOL) -> list[PriceRevision]:
    """Runs of consecutive stored dates whose close changed by the same factor, oldest first.

    Args:
        stored: the bars as stored (``close`` column, date index).
        restated: the same ticker's bars as the source gives them now.
        rel_tol: relative tolerance within which two factors are the same, and a factor of 1 is no change.

    Returns:
        One :class:`PriceRevision` per run; dates whose close did not change are left out.
    """
    common = stored.index.intersection(restated.index)
    factors = (restated.loc[common, "close"] / stored.loc[common, "close"]).to_numpy(float)
    revisions: list[PriceRevision] = []
    start = 0
    for i in range(1, len(factors) + 1):
        if i == len(factors) or abs(factors[i] / factors[start] - 1) > rel_tol:
            if abs(factors[start] - 1) > rel_tol:
                first, last = common[start].date(), common[i - 1].date()
                revisions.append(PriceRevision(first, last, float(np.median(factors[start:i])), i - start))
            start = i
    return revisions


def describe(revisions: Sequence[PriceRevision]) -> str:
    """One line for the log and the run details, e.g. ``2010-06-29..2024-12-18 x0.333333 (3,633 sessions)``."""
    return "; ".join(f"{r.first_date}..{r.last_date} x{r.ratio:g} ({r.sessions:,} sessions)" for r in revisions)
