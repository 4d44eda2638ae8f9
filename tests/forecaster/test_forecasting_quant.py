"""Issue #20, item 8: bands that never narrow with the horizon (8a) and a recent-window MASE scale (8c)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.sources import generate_prices
from forecaster.evaluation import metrics
from forecaster.models.baselines import Naive
from forecaster.models.conformal import forecast_frame

README_QUANTILES = {  # dips at h=5, as the README's 2024-12-19 forecast did ([333.85, 569.86] inside h=4)
    0.80: np.array([0.045, 0.085, 0.105, 0.13, 0.125]),
    0.95: np.array([0.090, 0.185, 0.245, 0.285, 0.265]),
}


def _assert_nested(frame: pd.DataFrame) -> None:
    for level in ("80", "95"):
        lo, hi = frame[f"lo{level}"].to_numpy(), frame[f"hi{level}"].to_numpy()
        assert (np.diff(lo) <= 0).all(), f"lo{level} rises with the horizon: {lo}"
        assert (np.diff(hi) >= 0).all(), f"hi{level} falls with the horizon: {hi}"
        assert (np.diff(hi - lo) >= 0).all(), f"the {level}% band narrows: {hi - lo}"


def test_a_dipping_conformal_quantile_does_not_narrow_the_band() -> None:
    frame = forecast_frame(pd.Timestamp("2024-12-19"), 436.17, np.full(5, 436.17), README_QUANTILES)
    _assert_nested(frame)
    assert frame["lo95"].iloc[4] == frame["lo95"].iloc[3] and frame["hi95"].iloc[4] == frame["hi95"].iloc[3]
    assert frame["hi95"].iloc[3] == pytest.approx(436.17 * np.exp(0.285)), "widening bands are left as they were"


def test_bands_stay_nested_when_the_point_path_moves() -> None:
    q = {0.80: np.full(5, 0.03), 0.95: np.full(5, 0.05)}  # equal relative widths, a falling then rising path
    frame = forecast_frame(pd.Timestamp("2024-12-19"), 100.0, np.array([100.0, 95.0, 97.0, 103.0, 99.0]), q)
    _assert_nested(frame)
    assert ((frame["lo95"] <= frame["lo80"]) & (frame["lo80"] <= frame["point"])).all()
    assert ((frame["point"] <= frame["hi80"]) & (frame["hi80"] <= frame["hi95"])).all()


def test_every_model_forecast_is_nested_because_all_go_through_forecast_frame() -> None:
    prices = generate_prices(seed=3, n=300, start="2023-01-02")
    frame = Naive().fit(prices).predict(5)
    _assert_nested(frame)


def test_naive_scale_uses_the_recent_window_not_the_whole_history() -> None:
    early = 1.5 + np.cumsum(np.full(2000, 0.01))  # years of tiny moves at a low price
    recent = 400.0 + 10.0 * np.sin(np.arange(251))  # the last year: big moves at a high price
    close = np.concatenate([early, recent])
    expected = np.mean(np.abs(np.diff(close[-251:])))
    assert metrics.naive_scale(close) == pytest.approx(expected)
    assert metrics.naive_scale(close, window=10) == pytest.approx(np.mean(np.abs(np.diff(close[-11:]))))
    assert metrics.naive_scale(close[:5]) == pytest.approx(0.01), "a short history uses all its returns"


def test_naive_scores_a_mase_near_one_when_the_recent_scale_matches_the_scored_moves() -> None:
    rng = np.random.default_rng(0)
    close = np.concatenate([1.5 * np.exp(np.cumsum(rng.normal(0, 0.01, 2500))), 300 + np.cumsum(rng.normal(0, 8, 400))])
    train, test = close[:-60], close[-61:]
    mase = metrics.mase(test[1:], test[:-1], scale=metrics.naive_scale(train))
    assert 0.7 < mase < 1.3, f"naive's MASE is {mase:.2f} on a scale of the whole history"
