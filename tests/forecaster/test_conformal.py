"""Volatility-aware conformal intervals: the EWMA scale, scaled frames, ACI, and out-of-sample calibration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.data.calendar import sessions
from forecaster.models.baselines import Naive
from forecaster.models.conformal import aci_levels, conformal_quantiles, ewma_volatility, forecast_frame, horizon_scale


def _garch_prices(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """GARCH(1,1) closes (alpha 0.06, beta 0.93) and the true conditional variance of each day's log return."""
    idx = sessions("2016-01-04", "2021-12-31")
    rng = np.random.default_rng(seed)
    var, ret = np.full(len(idx), 4e-4), np.zeros(len(idx))
    for t in range(len(idx)):
        if t:
            var[t] = 4e-6 + 0.06 * ret[t - 1] ** 2 + 0.93 * var[t - 1]
        ret[t] = math.sqrt(var[t]) * rng.standard_normal()
    return pd.DataFrame({"close": 100.0 * np.exp(np.cumsum(ret))}, index=idx), var


def test_ewma_volatility_is_the_riskmetrics_weighted_mean_by_hand() -> None:
    close = np.array([100.0, 101.0, 99.0, 102.0, 102.5, 98.0])
    r2 = np.diff(np.log(close)) ** 2
    lam = 0.9
    for t in range(1, close.size):
        weights = [lam**k for k in range(t)]  # newest return first
        hand = sum(w * r2[t - 1 - k] for k, w in enumerate(weights)) / sum(weights)
        assert ewma_volatility(close, lam=lam)[t] == pytest.approx(math.sqrt(hand), rel=1e-12)
    assert math.isnan(ewma_volatility(close)[0])


def test_ewma_volatility_depends_only_on_the_last_span_closes() -> None:
    close = _garch_prices()[0]["close"].to_numpy()
    full, tail = ewma_volatility(close, span=50), ewma_volatility(close[-200:], span=50)
    np.testing.assert_allclose(full[-149:], tail[-149:], rtol=1e-12)


def test_scaled_interval_is_point_times_exp_of_q_times_sigma() -> None:
    q = {0.80: np.array([1.2, 1.2]), 0.95: np.array([2.0, 2.0])}
    sigma = horizon_scale(np.array([0.02]), 2)[0]
    assert sigma.tolist() == pytest.approx([0.02, 0.02 * math.sqrt(2)])
    frame = forecast_frame(pd.Timestamp("2024-12-23"), 100.0, np.array([100.0, 101.0]), q, sigma)
    assert frame["hi80"].tolist() == pytest.approx([100.0 * math.exp(0.024), 101.0 * math.exp(1.2 * sigma[1])])
    assert frame["lo95"].iloc[0] == pytest.approx(100.0 * math.exp(-0.04))


def test_aci_with_gamma_zero_keeps_the_nominal_level() -> None:
    scores = np.random.default_rng(0).exponential(size=(100, 2))
    assert {lv: v.tolist() for lv, v in aci_levels(scores, gamma=0.0).items()} == {0.8: [0.8, 0.8], 0.95: [0.95, 0.95]}


def test_aci_raises_the_level_after_misses_and_lowers_it_after_hits() -> None:
    early = np.random.default_rng(0).permutation(np.linspace(0.1, 1.0, 50))
    calm_then_wild = np.concatenate([early, np.full(30, 5.0)])  # every late score misses
    wild_then_calm = np.concatenate([early, np.full(30, 0.01)])  # every late score hits
    assert aci_levels(calm_then_wild, (0.8,), gamma=0.01)[0.8][0] > 0.8
    assert aci_levels(wild_then_calm, (0.8,), gamma=0.01)[0.8][0] < 0.8
    levels = aci_levels(calm_then_wild, (0.8,), gamma=0.01)
    assert (
        conformal_quantiles(calm_then_wild, (0.8,), adjusted=levels)[0.8][0]
        >= conformal_quantiles(calm_then_wild, (0.8,))[0.8][0]
    )


def _wild_coverage(interval: str) -> float:
    """80% coverage of naive's horizon-1 interval on the wildest third of the days (by true variance)."""
    prices, var = _garch_prices()
    close, origins = prices["close"].to_numpy(), np.arange(300, len(prices) - 1, 2)
    wild = var[origins + 1] > np.quantile(var[origins + 1], 2 / 3)
    hits = []
    for t in origins[wild]:
        frame = Naive(calibration=250, interval=interval).fit(prices.iloc[: t + 1]).predict(1)
        hits.append(frame["lo80"].iloc[0] <= close[t + 1] <= frame["hi80"].iloc[0])
    return float(np.mean(hits))


def test_ewma_scaled_intervals_cover_wild_days_where_plain_ones_do_not() -> None:
    plain, ewma = _wild_coverage("plain"), _wild_coverage("ewma")
    assert plain < 0.74 and 0.76 <= ewma <= 0.88, (plain, ewma)


def test_lstm_calibration_and_track_record_hold_only_targets_it_had_not_seen(long_prices, tiny_preset):
    """Full fit: the calibration slice comes after the early-stopping/shrinkage slice; updates score before they
    fine-tune. Every calibration score is one of those out-of-sample forecasts."""
    from forecaster.models.lstm import LSTMForecaster

    model = LSTMForecaster(tiny_preset.replace(interval="plain"), horizon=3).fit(long_prices.iloc[:600])
    track = model.track_record()
    assert len(track) >= 20 and (track.index > track["seen_until"]).all()
    assert (track["seen_until"] == model.seen_until_).all()
    np.testing.assert_allclose(model.residuals_[:, 0], np.abs(np.log(track["actual"] / track["point"])), rtol=1e-6)
    before = model.predict(1)["point"].iloc[0]
    model.update(long_prices.iloc[:601])  # scores the matured target, then fine-tunes on it
    track = model.track_record()
    assert (track.index > track["seen_until"]).all()
    assert track.index[-1] == long_prices.index[600] and track["point"].iloc[-1] == pytest.approx(before, rel=1e-6)
    assert model.seen_until_ >= track.index[-1], "the fine-tune has now seen it: the record keeps the old stamp"
    assert model.residuals_[-1, 0] == pytest.approx(abs(math.log(track["actual"].iloc[-1] / before)), rel=1e-6)
