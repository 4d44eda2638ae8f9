"""Range-based daily variances, HAR-style log-volatility inputs and the range scale target, against hand loops."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.data.sources import generate_prices
from forecaster.errors import ConfigError
from forecaster.models.features import FEATURE_NAMES, WindowedData, compute_features, daily_variance, warmup_rows

BARS = pd.DataFrame(
    {"open": [10.0, 10.5, 9.8], "high": [11.0, 10.9, 10.4], "low": [9.5, 10.1, 9.6], "close": [10.4, 10.2, 10.3]},
    index=pd.bdate_range("2024-01-02", periods=3),
)


def test_daily_variances_match_their_hand_formulas() -> None:
    o, h, lo, c, prev = 9.8, 10.4, 9.6, 10.3, 10.2  # the third bar
    ln = math.log
    hand = {
        "r2": ln(c / prev) ** 2,
        "parkinson": ln(h / lo) ** 2 / (4 * ln(2)),
        "garman_klass": 0.5 * ln(h / lo) ** 2 - (2 * ln(2) - 1) * ln(c / o) ** 2,
        "rogers_satchell": ln(h / c) * ln(h / o) + ln(lo / c) * ln(lo / o),
        "gap2": ln(o / prev) ** 2,
        "gk_gap": 0.5 * ln(h / lo) ** 2 - (2 * ln(2) - 1) * ln(c / o) ** 2 + ln(o / prev) ** 2,
    }
    for kind, value in hand.items():
        assert daily_variance(BARS, kind).iloc[2] == pytest.approx(value, rel=1e-12), kind
    assert np.isnan(daily_variance(BARS, "gk_gap").iloc[0]), "no previous close: no gap"
    with pytest.raises(ConfigError, match="unknown variance 'yang_zhang'"):
        daily_variance(BARS, "yang_zhang")


def test_har_log_volatility_is_half_the_log_of_the_window_mean() -> None:
    prices = generate_prices(seed=3, n=60)
    feats = compute_features(prices, ("lv_parkinson_5", "lv_gk_gap_22"))
    park = daily_variance(prices, "parkinson").to_numpy()
    assert feats["lv_parkinson_5"].iloc[40] == pytest.approx(0.5 * np.log(park[36:41].mean() + 1e-8))
    gk = daily_variance(prices, "gk_gap").clip(lower=0).to_numpy()
    assert feats["lv_gk_gap_22"].iloc[59] == pytest.approx(0.5 * np.log(gk[38:60].mean() + 1e-8))


def test_volatility_features_use_no_future_row_and_declare_their_warm_up() -> None:
    prices = generate_prices(seed=2, n=120)
    names = tuple(f for f in FEATURE_NAMES if f.startswith("lv_")) + ("gap",)
    base = compute_features(prices, names)
    altered = prices.copy()
    altered.iloc[100:, :4] *= np.linspace(1.0, 2.0, 20)[:, None]
    again = compute_features(altered, names)
    np.testing.assert_array_equal(base.iloc[:100].to_numpy(), again.iloc[:100].to_numpy())
    for name in names:
        assert base[name].iloc[warmup_rows((name,)) :].notna().all(), name


def test_future_range_volatility_sums_the_next_h_variances() -> None:
    prices = generate_prices(seed=4, n=40)
    data = WindowedData.build(prices, ("log_return",), window=5, horizon=3, target="log_return")
    var = daily_variance(prices, "gk_gap").to_numpy()[1:]  # the rows WindowedData keeps (warm-up 1)
    out = data.future_range_volatility(3)
    for r in (0, 10, 35):
        for h in (1, 2, 3):
            assert out[r, h - 1] == pytest.approx(np.sqrt(var[r + 1 : r + 1 + h].clip(0).sum()))
    assert np.isnan(out[-1]).all() and np.isnan(out[-3, 2]) and np.isfinite(out[-4]).all()
