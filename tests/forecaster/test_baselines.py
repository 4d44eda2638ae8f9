"""Baselines: points by hand, the Forecaster protocol, and honest (no look-ahead) conformal intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.calendar import sessions
from forecaster.errors import ConfigError, NotEnoughDataError, NotFittedError
from forecaster.models.base import FORECAST_COLUMNS, Forecaster
from forecaster.models.baselines import SES, Drift, Garch, MovingAverage, Naive, RangeEWMA
from forecaster.models.conformal import conformal_quantiles

H = 5


def _prices(seed: int = 0, start: str = "2020-01-02", end: str = "2021-12-31") -> pd.DataFrame:
    """Deterministic GBM closes on NYSE sessions, OHLC derived from the close."""
    idx = sessions(start, end)
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, len(idx))))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": rng.uniform(1e6, 2e6, len(idx)),
        },
        index=idx,
    )


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return _prices()


SPECS = [(Naive, {}), (Drift, {"lookback": 60}), (MovingAverage, {"window": 10}), (SES, {"alpha": 0.6})]
IDS = ["naive", "drift", "moving_average", "ses"]


@pytest.mark.parametrize(("cls", "kwargs"), SPECS, ids=IDS)
def test_baseline_follows_the_forecaster_protocol(cls: type, kwargs: dict, prices: pd.DataFrame) -> None:
    model = cls(**kwargs)
    assert isinstance(model, Forecaster)
    assert model.fit(prices) is model and model.update(prices) is model
    frame = model.predict(H)
    assert tuple(frame.columns) == FORECAST_COLUMNS and len(frame) == H
    assert (frame["as_of"] == prices.index[-1]).all()
    assert (frame["lo95"] <= frame["lo80"]).all() and (frame["lo80"] <= frame["point"]).all()
    assert (frame["point"] <= frame["hi80"]).all() and (frame["hi80"] <= frame["hi95"]).all()


def test_naive_forecasts_last_close(prices: pd.DataFrame) -> None:
    frame = Naive().fit(prices).predict(H)
    assert (frame["point"] == prices["close"].iloc[-1]).all()
    assert (frame["naive"] == prices["close"].iloc[-1]).all()


def test_drift_on_a_straight_line_extrapolates_exactly() -> None:
    idx = sessions("2020-01-02", "2021-12-31")
    line = pd.DataFrame({"close": 50.0 + 0.5 * np.arange(len(idx))}, index=idx)
    frame = Drift(lookback=30).fit(line).predict(H)
    last = line["close"].iloc[-1]
    assert frame["point"].tolist() == pytest.approx([last + 0.5 * h for h in range(1, H + 1)], rel=1e-12)


def test_drift_matches_hand_formula(prices: pd.DataFrame) -> None:
    close = prices["close"].to_numpy()
    slope = (close[-1] - close[-61]) / 60
    frame = Drift(lookback=60).fit(prices).predict(H)
    assert frame["point"].tolist() == pytest.approx([close[-1] + h * slope for h in range(1, H + 1)])


def test_drift_uses_all_rows_when_fewer_than_lookback(prices: pd.DataFrame) -> None:
    short = prices.iloc[:40]
    close = short["close"].to_numpy()
    frame = Drift(lookback=252, calibration=20).fit(short).predict(2)
    slope = (close[-1] - close[0]) / 39
    assert frame["point"].tolist() == pytest.approx([close[-1] + slope, close[-1] + 2 * slope])


def test_moving_average_equals_hand_mean(prices: pd.DataFrame) -> None:
    total = 0.0
    for value in prices["close"].iloc[-10:]:
        total += value
    frame = MovingAverage(window=10).fit(prices).predict(H)
    assert frame["point"].tolist() == pytest.approx([total / 10] * H, rel=1e-12)


@pytest.mark.parametrize("cls", [Naive, Drift, MovingAverage, SES])
def test_predict_before_fit_raises(cls: type) -> None:
    with pytest.raises(NotFittedError, match=f"{cls.__name__} is not fitted: call fit\\(prices\\) first"):
        cls().predict(H)


def test_constructor_only_stores_kwargs() -> None:
    model = Drift(lookback=10, calibration=50)
    assert vars(model) == {"lookback": 10, "calibration": 50, "interval": "plain"}


def test_too_little_history_for_calibration_names_the_numbers(prices: pd.DataFrame) -> None:
    with pytest.raises(NotEnoughDataError, match="at least 10 residuals for horizon 3, got 9"):
        Naive().fit(prices.iloc[:12]).predict(3)


def test_update_moves_the_origin(prices: pd.DataFrame) -> None:
    model = Naive().fit(prices.iloc[:300]).update(prices.iloc[:301])
    assert model.predict(1)["as_of"].iloc[0] == prices.index[300]


@pytest.mark.parametrize(("cls", "kwargs"), SPECS, ids=IDS)
def test_calibration_residuals_equal_a_refit_on_truncated_history(
    cls: type, kwargs: dict, prices: pd.DataFrame
) -> None:
    """Brute force: each past forecast is refitted on prices[: t + 1] only, so it cannot see past its origin."""
    n, cal = 400, 30
    fast = cls(**kwargs, calibration=cal).fit(prices.iloc[:n]).calibration_residuals(H)
    origins = range(n - 1 - H - cal + 1, n - 1)
    points = {
        t: cls(**kwargs, calibration=cal).fit(prices.iloc[: t + 1]).predict(H)["point"].to_numpy() for t in origins
    }
    close = prices["close"].to_numpy()
    for h in range(1, H + 1):
        origins = range(n - 1 - h - cal + 1, n - h)
        slow = [abs(np.log(close[t + h] / points[t][h - 1])) for t in origins]
        np.testing.assert_allclose(fast[:, h - 1], slow, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cls", [Naive, Drift, MovingAverage])
def test_intervals_use_no_data_after_the_origin(cls: type, prices: pd.DataFrame) -> None:
    """The forecast at row 499 is the same whatever the future holds, and changes when the past does."""
    future_crash = prices.copy()
    future_crash.iloc[500:, future_crash.columns.get_loc("close")] *= 0.3
    a = cls().fit(prices.iloc[:500]).predict(H)
    b = cls().fit(future_crash.iloc[:500]).predict(H)
    pd.testing.assert_frame_equal(a, b)
    residuals = cls().fit(prices.iloc[:500]).calibration_residuals(H)
    assert np.isfinite(residuals).all() and residuals.shape == (250, H)
    q = conformal_quantiles(residuals)
    assert a["hi80"].to_numpy() == pytest.approx(a["point"].to_numpy() * np.exp(q[0.8]))
    # the newest actual used is the origin's own close: changing it moves the horizon-1 interval
    past_shock = prices.iloc[:500].copy()
    past_shock.iloc[-1, past_shock.columns.get_loc("close")] *= 2.0
    shocked = cls().fit(past_shock).calibration_residuals(H)
    assert shocked[-1, 0] != residuals[-1, 0]


def test_ses_matches_the_hand_recursion(prices: pd.DataFrame) -> None:
    level = prices["close"].iloc[0]
    for value in prices["close"].iloc[1:]:
        level = 0.3 * value + 0.7 * level
    assert SES(alpha=0.3).fit(prices).predict(H)["point"].tolist() == pytest.approx([level] * H, rel=1e-12)


def test_ses_fits_alpha_before_the_calibration_window_only(prices: pd.DataFrame) -> None:
    """Rows in the calibration window must not move alpha (they would if it were fitted on everything)."""
    model = SES(calibration=100).fit(prices)
    altered = prices.copy()
    altered.iloc[-100:, altered.columns.get_loc("close")] *= np.linspace(1.0, 3.0, 100)
    assert 0.01 <= model.alpha_ <= 1.0
    assert SES(calibration=100).fit(altered).alpha_ == model.alpha_
    assert SES(calibration=10).fit(altered).alpha_ != model.alpha_


@pytest.mark.parametrize(("cls", "kwargs"), SPECS, ids=IDS)
def test_ewma_intervals_scale_the_plain_residuals_by_the_volatility_at_each_origin(
    cls: type, kwargs: dict, prices: pd.DataFrame
) -> None:
    from forecaster.models.conformal import ewma_volatility

    plain = cls(**kwargs, calibration=30).fit(prices.iloc[:400])
    scaled = cls(**kwargs, calibration=30, interval="ewma").fit(prices.iloc[:400])
    sigma = ewma_volatility(prices["close"].to_numpy()[:400])
    for h in (1, 3):
        origins = np.arange(400 - 1 - h - 30 + 1, 400 - h)
        expected = plain.calibration_residuals(H)[:, h - 1] / (sigma[origins] * np.sqrt(h))
        np.testing.assert_allclose(scaled.calibration_residuals(H)[:, h - 1], expected, rtol=1e-12)
    frame = scaled.predict(H)
    q80 = conformal_quantiles(scaled.calibration_residuals(H))[0.8]
    np.testing.assert_allclose(np.log(frame["hi80"] / frame["point"]), q80 * sigma[-1] * np.sqrt(np.arange(1, H + 1)))


def test_unknown_interval_is_refused(prices: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="interval must be one of plain, ewma, .*, got 'head'"):
        Naive(interval="head").fit(prices)


def _ohlc(seed: int = 1, n: int = 520) -> pd.DataFrame:
    """GBM bars with an overnight gap and a random intraday range."""
    idx = sessions("2020-01-02", "2022-12-30")[:n]
    rng = np.random.default_rng(seed)
    vol = 0.02 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # clustered volatility
    close = 100.0 * np.exp(np.cumsum(vol * rng.standard_normal(n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(0.3 * vol * rng.standard_normal(n))
    high = np.maximum(open_, close) * np.exp(np.abs(vol * rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(vol * rng.standard_normal(n)))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1e6}, index=idx)


@pytest.mark.parametrize("model", [RangeEWMA(), Garch()], ids=["range_ewma", "garch"])
def test_volatility_baselines_follow_the_protocol_with_naive_points(model: Naive) -> None:
    bars = _ohlc()
    assert isinstance(model, Forecaster) and model.fit(bars.iloc[:-1]) is model and model.update(bars) is model
    frame = model.predict(H)
    assert tuple(frame.columns) == FORECAST_COLUMNS and (frame["point"] == bars["close"].iloc[-1]).all()
    assert (frame["lo95"] < frame["lo80"]).all() and (frame["hi80"] < frame["hi95"]).all()
    assert (np.diff(frame["hi80"] - frame["lo80"]) > 0).all(), "wider with the horizon"


def test_range_ewma_scales_by_the_hand_ewma_of_garman_klass_plus_the_gap() -> None:
    bars = _ohlc().iloc[:300]
    o, hi, lo, c = (np.log(bars[k].to_numpy()) for k in ("open", "high", "low", "close"))
    var = [0.5 * (hi[i] - lo[i]) ** 2 - (2 * np.log(2) - 1) * (c[i] - o[i]) ** 2 + (o[i] - c[i - 1]) ** 2
           for i in range(1, len(c))]  # fmt: skip
    recent = var[::-1][:100]  # newest first, 100 bars
    sigma = np.sqrt(sum(0.94**k * v for k, v in enumerate(recent)) / sum(0.94**k for k in range(len(recent))))
    model = RangeEWMA(calibration=60).fit(bars)
    q80 = conformal_quantiles(model.calibration_residuals(H))[0.8]
    assert model.sigma_[-1] == pytest.approx(sigma, rel=1e-12)
    frame = model.predict(H)
    assert np.log(frame["hi80"] / frame["point"]).iloc[0] == pytest.approx(q80[0] * sigma, rel=1e-12)
    plain = Naive(calibration=60).fit(bars).calibration_residuals(H)
    origins = np.arange(300 - 3 - 60, 300 - 3)  # horizon 3: origins n-1-h-cal+1 .. n-1-h
    np.testing.assert_allclose(model.calibration_residuals(H)[:, 2], plain[:, 2] / (model.sigma_[origins] * np.sqrt(3)))


def test_garch_fits_its_parameters_before_the_calibration_window_only() -> None:
    bars = _ohlc()
    model = Garch(calibration=100).fit(bars)
    altered = bars.copy()
    altered.iloc[-100:, :4] *= np.linspace(1.0, 1.5, 100)[:, None]  # every calibration target moves
    assert Garch(calibration=100).fit(altered).params_ == pytest.approx(model.params_, rel=1e-12)
    assert Garch(calibration=110).fit(altered).params_ != pytest.approx(model.params_, rel=1e-6)
    omega, alpha, beta, nu = model.params_
    assert omega > 0 and alpha >= 0 and beta >= 0 and alpha + beta < 1 and nu > 2


def test_garch_scales_follow_the_garch_recursion_and_mean_revert() -> None:
    model = Garch(calibration=100).fit(_ohlc())
    omega, alpha, beta, _ = model.params_
    var = (100.0 * model.scales_[-30:]) ** 2  # cumulative h-day variances in %², the last 30 origins
    step = np.diff(np.concatenate((np.zeros((30, 1)), var), axis=1), axis=1)  # the variance of day t + k
    np.testing.assert_allclose(step[:, 1:], omega + (alpha + beta) * step[:, :-1], rtol=1e-9)
    r = 100.0 * np.diff(np.log(model.close_))[-29:]  # the return that ends at each origin
    np.testing.assert_allclose(step[1:, 0], omega + alpha * r**2 + beta * step[:-1, 0], rtol=1e-9)
    unconditional = omega / (1 - alpha - beta)
    assert (np.abs(step[:, -1] - unconditional) <= np.abs(step[:, 0] - unconditional) + 1e-12).all()


def test_garch_update_keeps_the_parameters_and_sees_no_future() -> None:
    bars = _ohlc()
    model = Garch(calibration=100).fit(bars.iloc[:480])
    params = model.params_.copy()
    a = model.update(bars.iloc[:500]).predict(H)
    assert (model.params_ == params).all() and a["as_of"].iloc[0] == bars.index[499]
    crash = bars.copy()
    crash.iloc[500:, :4] *= 0.3
    b = Garch(calibration=100).fit(crash.iloc[:480]).update(crash.iloc[:500]).predict(H)
    pd.testing.assert_frame_equal(a, b)


def test_garch_without_enough_returns_before_calibration_names_the_numbers() -> None:
    with pytest.raises(NotEnoughDataError, match="300 rows leave 49 returns before the 250-origin calibration window"):
        Garch().fit(_ohlc().iloc[:300])


def test_a_mean_reverting_range_scale_follows_the_hand_term_structure() -> None:
    from forecaster.models.conformal import ewma_mean
    from forecaster.models.features import daily_variance

    bars = _ohlc()
    model = RangeEWMA(calibration=60, persistence=0.8).fit(bars)
    var = daily_variance(bars, "gk_gap").clip(lower=0).to_numpy()
    v, m = ewma_mean(var)[-1], var[-250:].mean()
    hand = np.sqrt(np.cumsum([m + 0.8**k * (v - m) for k in range(H)]))
    np.testing.assert_allclose(model._scale(np.array([len(bars) - 1]), H)[0], hand, rtol=1e-10)
    flat = RangeEWMA(calibration=60).fit(bars)._scale(np.array([len(bars) - 1]), H)[0]
    np.testing.assert_allclose(flat, np.sqrt(v) * np.sqrt(np.arange(1, H + 1)), rtol=1e-10)
