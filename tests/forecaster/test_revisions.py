"""Restated history: which dates changed, and the runs of one adjustment factor."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from forecaster.data.revisions import describe, price_revisions, restated_dates
from forecaster.data.sources import generate_prices

PRICE = ["open", "high", "low", "close"]


@pytest.fixture()
def stored() -> pd.DataFrame:
    return generate_prices(seed=3, n=60)


def split_3_for_1(frame: pd.DataFrame, before: pd.Timestamp) -> pd.DataFrame:
    out = frame.copy()
    out.loc[out.index < before, PRICE] /= 3.0
    out.loc[out.index < before, "volume"] *= 3.0
    return out


def test_identical_bars_are_not_restated(stored):
    assert len(restated_dates(stored, stored.copy())) == 0
    assert price_revisions(stored, stored.copy()) == []


def test_rounding_noise_is_not_a_restatement(stored):
    assert len(restated_dates(stored, stored * (1 + 1e-7))) == 0


def test_a_split_restates_every_earlier_bar(stored):
    split = stored.index[40]
    new = split_3_for_1(stored, split)
    assert list(restated_dates(stored, new)) == list(stored.index[:40])
    (revision,) = price_revisions(stored, new)
    assert (revision.first_date, revision.last_date, revision.sessions) == (
        stored.index[0].date(), stored.index[39].date(), 40,
    )  # fmt: skip
    assert revision.ratio == pytest.approx(1 / 3, rel=1e-12)


def test_two_restated_ranges_are_two_revisions(stored):
    new = split_3_for_1(split_3_for_1(stored, stored.index[40]), stored.index[20])  # 9:1 before day 20, 3:1 before 40
    revisions = price_revisions(stored, new)
    assert [(r.sessions, round(r.ratio, 9)) for r in revisions] == [(20, round(1 / 9, 9)), (20, round(1 / 3, 9))]
    assert describe(revisions).count("sessions") == 2


def test_only_shared_dates_are_compared(stored):
    new = split_3_for_1(stored, stored.index[40]).iloc[10:]
    (revision,) = price_revisions(stored, new)
    assert revision.first_date == stored.index[10].date() and revision.sessions == 30
    assert isinstance(revision.last_date, dt.date)
