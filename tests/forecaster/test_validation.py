"""validate_prices: one test per kind of problem, every problem at once, and the clean case."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest

from forecaster.data.sources import generate_prices
from forecaster.data.validation import Problem, ensure_valid, format_problems, validate_prices
from forecaster.errors import InvalidPricesError

DAY = pd.Timestamp("2024-03-05")


def with_value(frame: pd.DataFrame, day: str | pd.Timestamp, column: str, value: float) -> pd.DataFrame:
    out = frame.copy()
    out.loc[pd.Timestamp(day), column] = value
    return out


def messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def test_clean_synthetic_prices_have_no_problems():
    assert validate_prices(generate_prices(seed=0, n=1500)) == []


def test_missing_columns_are_reported_alone(prices):
    frame = prices.drop(columns=["close", "volume"]).iloc[:0]
    assert messages(validate_prices(frame)) == ["close: missing required column", "volume: missing required column"]


def test_empty_frame_is_a_problem(prices):
    assert messages(validate_prices(prices.iloc[:0])) == ["no rows: the price frame is empty"]


def test_index_that_is_not_dates_is_a_problem(prices):
    problems = validate_prices(prices.reset_index(drop=True))
    assert messages(problems) == ["index is not a DatetimeIndex (got int64)"]


def test_tz_aware_index_is_a_problem(prices):
    frame = prices.tz_localize("America/New_York")
    assert messages(validate_prices(frame)) == ["index is tz-aware (America/New_York); expected tz-naive dates"]


def test_time_of_day_on_a_daily_bar_is_a_problem(prices):
    frame = prices.set_axis(prices.index.where(prices.index != DAY, DAY + pd.Timedelta(hours=16)))
    assert messages(validate_prices(frame)) == ["2024-03-05: time of day 16:00:00 on a daily bar"]


def test_nan_is_reported_with_date_and_column(prices):
    problems = validate_prices(with_value(prices, DAY, "close", np.nan))
    assert problems == [Problem(DAY, "close", problems[0].value, "NaN value")]
    assert str(problems[0]) == "2024-03-05 close=nan: NaN value"


def test_infinite_value_is_reported(prices):
    problems = validate_prices(with_value(prices, DAY, "volume", np.inf))
    assert messages(problems) == ["2024-03-05 volume=inf: infinite value"]


def test_non_positive_price_is_reported(prices):
    problems = validate_prices(with_value(prices, DAY, "low", 0.0))
    assert messages(problems) == ["2024-03-05 low=0.0: non-positive price"]


def test_negative_volume_is_reported(prices):
    problems = validate_prices(with_value(prices, DAY, "volume", -5.0))
    assert messages(problems) == ["2024-03-05 volume=-5.0: negative volume"]


def test_high_below_low_is_reported(prices):
    frame = with_value(with_value(prices, DAY, "high", 10.0), DAY, "low", 11.0)
    assert messages(validate_prices(frame)) == ["2024-03-05 high=10.0: high < low (low=11.0)"]


@pytest.mark.parametrize("column", ["close", "open"])
def test_price_outside_low_high_is_reported(prices, column):
    high = prices.loc[DAY, "high"]
    problems = validate_prices(with_value(prices, DAY, column, high * 1.01))
    assert len(problems) == 1
    assert (problems[0].date, problems[0].column) == (DAY, column)
    assert f"{column} outside [low, high]" in problems[0].message


def test_float_rounding_at_the_high_is_tolerated(prices):
    high = prices.loc[DAY, "high"]
    assert validate_prices(with_value(prices, DAY, "close", high * (1 + 1e-9))) == []


def test_duplicate_dates_are_reported(prices):
    frame = pd.concat([prices, prices.loc[[DAY]]]).sort_index(kind="stable")
    assert messages(validate_prices(frame)) == ["2024-03-05: duplicate date (2 rows)"]


def test_unsorted_dates_are_reported(prices):
    frame = prices.iloc[[0, 2, 1, *range(3, len(prices))]]
    assert messages(validate_prices(frame)) == ["2024-02-21: dates not sorted: comes after 2024-02-22"]


def test_gap_of_more_than_max_sessions_is_reported(prices):
    frame = prices.drop(prices.index[10:16])  # 6 sessions missing
    first_after = prices.index[16].strftime("%Y-%m-%d")
    problems = validate_prices(frame)
    assert messages(problems) == [
        f"{first_after}: gap: 6 NYSE sessions missing since {prices.index[9]:%Y-%m-%d} (max 5)"
    ]
    assert validate_prices(frame, max_gap_sessions=6) == []
    assert validate_prices(frame, max_gap_sessions=None) == []


def test_holidays_and_weekends_are_not_gaps():
    frame = generate_prices(seed=0, n=20, start="2024-12-16")  # spans Christmas and New Year's Day
    assert validate_prices(frame, max_gap_sessions=0) == []


def test_row_on_a_weekend_is_reported(prices):
    saturday = pd.Timestamp("2024-03-09")
    frame = pd.concat([prices, prices.loc[[DAY]].set_axis([saturday])]).sort_index()
    frame.index.name = "date"
    assert messages(validate_prices(frame)) == ["2024-03-09: not an NYSE session (Saturday)"]
    assert validate_prices(frame, calendar_check=False) == []


def test_every_problem_is_reported_in_date_order(prices):
    frame = with_value(prices, "2024-03-12", "close", np.nan)
    frame = with_value(frame, DAY, "open", -1.0)
    frame = pd.concat([frame, frame.iloc[[-1]]])
    problems = validate_prices(frame)
    assert messages(problems) == [
        "2024-03-05 open=-1.0: non-positive price",
        "2024-03-05 open=-1.0: open outside [low, high] = "
        f"[{float(prices.loc[DAY, 'low'])!r}, {float(prices.loc[DAY, 'high'])!r}]",
        "2024-03-12 close=nan: NaN value",
        "2024-04-16: duplicate date (2 rows)",
    ]


def test_ensure_valid_raises_with_every_problem(prices):
    frame = with_value(with_value(prices, DAY, "close", np.nan), "2024-03-06", "volume", -1.0)
    with pytest.raises(InvalidPricesError, match=r"invalid prices: 2 problem\(s\): 2024-03-05 close=nan") as info:
        ensure_valid(frame)
    assert len(info.value.problems) == 2


def test_ensure_valid_returns_a_clean_frame_unchanged(prices):
    assert ensure_valid(prices) is prices


def test_format_problems_prints_one_line_per_problem():
    problems = [Problem(DAY, "close", float("nan"), "NaN value"), Problem(None, None, None, "no rows")]
    assert format_problems(problems) == "2024-03-05 close=nan: NaN value\nno rows"


def test_problems_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Problem(DAY, "close", 1.0, "x").message = "y"  # type: ignore[misc]


def test_validation_of_4000_rows_takes_under_100_ms():
    frame = generate_prices(seed=0, n=4000, start="2005-01-03")
    validate_prices(frame)  # warm the calendar
    best = min(_timed(validate_prices, frame) for _ in range(3))
    assert best < 0.1


def _timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def test_unexplained_jump_is_reported_by_date(prices):
    split_day = prices.index[20]
    frame = prices.copy()
    frame.loc[split_day:, ["open", "high", "low", "close"]] /= 3.0  # a 3:1 split applied to new bars only
    problems = validate_prices(frame)
    assert [p.date for p in problems] == [split_day]
    assert "jump: close moved -67%" in str(problems[0]) and "ratio 3" in str(problems[0])


def test_jump_threshold_is_a_parameter(prices):
    frame = prices.copy()
    frame.loc[prices.index[20] :, ["open", "high", "low", "close"]] /= 3.0
    assert validate_prices(frame, max_log_move=None) == []
    assert validate_prices(prices, max_log_move=0.4) == []


def test_a_large_real_move_is_not_a_jump(prices):
    frame = prices.copy()
    frame.loc[prices.index[20] :, ["open", "high", "low", "close"]] *= 1.27  # TSLA's largest day was +27%
    assert validate_prices(frame) == []
