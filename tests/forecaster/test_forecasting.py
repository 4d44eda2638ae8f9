"""Conformal quantiles (finite-sample rank), log residuals and the forecast frame layout."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import NotEnoughDataError
from forecaster.models.base import FORECAST_COLUMNS
from forecaster.models.conformal import LEVELS, conformal_quantiles, forecast_frame, log_residuals


def _hand_conformal(values: list[float], level: float) -> float:
    """The ceil((n + 1) * level)-th smallest value (capped at n), by hand."""
    ordered = sorted(values)
    rank = min(math.ceil((len(ordered) + 1) * level - 1e-9), len(ordered))
    return ordered[rank - 1]


def test_conformal_finite_sample_rank_on_hand_example() -> None:
    res = np.array([0.09, 0.01, 0.05, 0.03, 0.07, 0.02, 0.08, 0.04, 0.06])  # n = 9
    q = conformal_quantiles(res, levels=(0.8,), min_residuals=9)
    # rank ceil(10 * 0.8) / 9 = 8/9: the 8th smallest (0.08), not the uncorrected 0.8 quantile or the maximum
    assert q[0.8].tolist() == [0.08]
    assert q[0.8][0] == np.quantile(res, 8 / 9, method="inverted_cdf")


def test_conformal_rank_caps_at_the_largest_residual() -> None:
    res = np.arange(1, 11) / 100.0  # n = 10, ceil(11 * 0.95) = 11 > 10
    assert conformal_quantiles(res)[0.95].tolist() == [0.10]


def test_conformal_per_horizon_matches_hand_and_ignores_non_finite() -> None:
    rng = np.random.default_rng(0)
    res = np.abs(rng.normal(0, 0.02, size=(40, 3)))
    res[:5, 2] = np.nan
    res[7, 1] = np.inf
    q = conformal_quantiles(res)
    for level in LEVELS:
        for h in range(3):
            col = [v for v in res[:, h] if np.isfinite(v)]
            assert q[level][h] == _hand_conformal(col, level)


def test_conformal_names_horizon_and_counts_when_too_few() -> None:
    res = np.full((12, 3), 0.01)
    res[:8, 2] = np.nan
    with pytest.raises(NotEnoughDataError, match="at least 10 residuals for horizon 3, got 4"):
        conformal_quantiles(res)


def test_log_residuals_is_log_ratio() -> None:
    assert log_residuals(np.array([110.0, 90.0]), np.array([100.0, 100.0])) == pytest.approx(
        [math.log(1.1), math.log(0.9)]
    )


def _frame(origin: str = "2024-12-23") -> pd.DataFrame:
    q = {0.80: np.array([0.01, 0.02, 0.03]), 0.95: np.array([0.02, 0.04, 0.06])}
    return forecast_frame(pd.Timestamp(origin), 100.0, np.array([101.0, 102.0, 103.0]), q)


def test_forecast_frame_target_dates_skip_weekends_and_holidays() -> None:
    frame = _frame("2024-12-23")
    assert frame["target_date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-12-24", "2024-12-26", "2024-12-27"]
    assert frame["horizon"].tolist() == [1, 2, 3]
    assert (frame["as_of"] == pd.Timestamp("2024-12-23")).all()


def test_forecast_frame_columns_and_dtypes() -> None:
    frame = _frame()
    assert tuple(frame.columns) == FORECAST_COLUMNS
    assert frame["horizon"].dtype == np.int64
    assert frame["as_of"].dtype.kind == "M" and frame["target_date"].dtype.kind == "M"
    floats = ["naive", "point", "lo80", "hi80", "lo95", "hi95"]
    assert (frame[floats].dtypes == np.float64).all()


def test_forecast_frame_intervals_are_multiplicative_contain_point_and_widen_with_level() -> None:
    frame = _frame()
    assert frame["lo80"].tolist() == pytest.approx(
        [101.0 * math.exp(-0.01), 102.0 * math.exp(-0.02), 103.0 * math.exp(-0.03)]
    )
    assert frame["hi95"].iloc[2] == pytest.approx(103.0 * math.exp(0.06))
    assert (frame["lo95"] < frame["lo80"]).all() and (frame["lo80"] < frame["point"]).all()
    assert (frame["point"] < frame["hi80"]).all() and (frame["hi80"] < frame["hi95"]).all()
    assert (frame["lo95"] > 0).all()


def test_forecast_frame_rejects_quantiles_of_wrong_length() -> None:
    q = {0.80: np.array([0.01, 0.02]), 0.95: np.array([0.02, 0.04, 0.06])}
    with pytest.raises(ValueError, match=r"quantiles\[0.8\] has 2 values but there are 3 horizons"):
        forecast_frame(pd.Timestamp("2024-12-23"), 100.0, np.array([101.0, 102.0, 103.0]), q)
