"""Baseline forecasters (naive, drift, moving average, SES, GARCH, range-EWMA) with honest conformal intervals.

Every baseline implements :class:`forecaster.models.base.Forecaster`. A baseline only defines ``_points(close, t,
h)``: the
point forecast for horizon ``h`` made at origin index ``t`` from ``close[: t + 1]`` (vectorised over arrays of
``t`` and ``h``). The shared :class:`_Baseline` uses it twice: at the last row for the forecast, and at the last
``calibration`` past origins of the fitted frame for the out-of-sample residuals behind the intervals. A past
origin ``t`` is scored against ``close[t + h]`` only when that row is in the frame, so nothing after the origin
of the forecast is ever used.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.signal import lfilter

from forecaster.errors import ConfigError, NotEnoughDataError, NotFittedError
from forecaster.models.conformal import (
    conformal_quantiles,
    ewma_mean,
    ewma_volatility,
    forecast_frame,
    horizon_scale,
    log_residuals,
)
from forecaster.models.features import daily_variance

logger = logging.getLogger("forecaster.models.baselines")
SCALES: tuple[str, ...] = ("plain", "ewma", "parkinson", "garman_klass", "rogers_satchell", "gk_gap")


def one_day_volatility(prices: pd.DataFrame, interval: str) -> np.ndarray:
    """One-day log-return volatility known at each row's close for a baseline ``interval`` (ones for ``plain``)."""
    if interval not in SCALES:
        raise ConfigError(f"interval must be one of {', '.join(SCALES)}, got '{interval}'")
    if interval == "plain":
        return np.ones(len(prices))
    if interval == "ewma":
        return ewma_volatility(prices["close"].to_numpy(dtype=float))
    missing = [c for c in ("open", "high", "low", "close") if c not in prices.columns]
    if missing:
        raise ValueError(f"interval '{interval}' needs OHLC prices; missing column(s) {missing}")
    return np.sqrt(ewma_mean(daily_variance(prices, interval).clip(lower=0.0).to_numpy()))


class _Baseline:
    """Shared fit/update/predict and conformal calibration; subclasses define ``name`` and ``_points``."""

    name: str = "baseline"
    calibration: int
    interval: str = "plain"

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, prices: pd.DataFrame) -> Self:
        """Store the closes of ``prices``; the origin becomes its last row."""
        if "close" not in prices.columns:
            raise ValueError(f"prices has no 'close' column; columns are {list(prices.columns)}")
        if len(prices) == 0:
            raise NotEnoughDataError(f"{self.name}: prices is empty")
        self.prices_ = prices
        self.close_ = prices["close"].to_numpy(dtype=float)
        self.origin_ = pd.Timestamp(prices.index[-1])
        self.last_close_ = float(self.close_[-1])
        self.sigma_ = self._volatility(prices)
        return self

    def _volatility(self, prices: pd.DataFrame) -> np.ndarray:
        """One-day volatility at each row (:func:`one_day_volatility` of ``interval``)."""
        return one_day_volatility(prices, self.interval)

    def _scale(self, t: np.ndarray, horizon: int) -> np.ndarray:
        """Scale of horizons 1..horizon at origins ``t``: ``(len(t), horizon)`` (ones for plain intervals)."""
        if self.interval == "plain":
            return np.ones((t.size, horizon))
        return horizon_scale(self.sigma_[t], horizon)

    def update(self, prices: pd.DataFrame, *, finetune: bool = True) -> Self:
        """Same as :meth:`fit`: baselines have nothing costly to learn (``finetune`` changes nothing)."""
        return self.fit(prices)

    def _check_fitted(self) -> None:
        if not hasattr(self, "close_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(prices) first")

    def calibration_residuals(self, horizon: int) -> np.ndarray:
        """Out-of-sample ``|log(actual / point)| / sigma`` of the last ``calibration`` origins per horizon.

        Column ``h - 1`` holds the forecasts made at origins ``t = n-1-h-calibration+1 .. n-1-h`` (those before
        the first row are dropped), each from ``close[: t + 1]``, scored against ``close[t + h]``.

        Returns:
            Array of shape ``(rows, horizon)``; rows with a negative origin are NaN.
        """
        self._check_fitted()
        n = self.close_.size
        h = np.arange(1, horizon + 1)[None, :]
        t = n - 1 - h - self.calibration + 1 + np.arange(self.calibration)[:, None]
        valid = t >= 0
        t_safe = np.where(valid, t, 0)
        h_full = np.broadcast_to(h, t.shape)
        actual = self.close_[np.where(valid, t_safe + h_full, 0)]
        with np.errstate(invalid="ignore", divide="ignore"):
            res = np.abs(log_residuals(actual, self._points(self.close_, t_safe, h_full)))
            scale = np.take_along_axis(self._scale(t_safe.ravel(), horizon).reshape(*t.shape, horizon),
                                       h_full[..., None] - 1, axis=2)[..., 0]  # fmt: skip
        return np.where(valid, res / scale, np.nan)

    def predict(self, horizon: int) -> pd.DataFrame:
        """Forecast ``horizon`` sessions after the origin (frame with
        :data:`~forecaster.models.base.FORECAST_COLUMNS`).
        """
        self._check_fitted()
        if int(horizon) < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        h = np.arange(1, int(horizon) + 1)
        points = self._points(self.close_, np.full(h.size, self.close_.size - 1), h)
        quantiles = conformal_quantiles(self.calibration_residuals(int(horizon)))
        sigma = self._scale(np.array([self.close_.size - 1]), int(horizon))[0]
        return forecast_frame(self.origin_, self.last_close_, points, quantiles, sigma)


class Naive(_Baseline):
    """Persistence: every horizon forecasts the last close.

    >>> import numpy as np, pandas as pd
    >>> from forecaster.data.calendar import sessions
    >>> prices = pd.DataFrame({"close": 100.0 + np.arange(61)}, index=sessions("2024-01-02", "2024-03-28"))
    >>> Naive(calibration=20).fit(prices).predict(3)["point"].tolist()
    [160.0, 160.0, 160.0]
    """

    name = "naive"

    def __init__(self, calibration: int = 250, interval: str = "plain") -> None:
        self.calibration = calibration
        self.interval = interval

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        return close[t] + 0.0 * h


class Drift(_Baseline):
    """Random walk with drift: ``last + h * (last - close[-lookback-1]) / lookback`` (all rows if fewer).

    >>> import numpy as np, pandas as pd
    >>> from forecaster.data.calendar import sessions
    >>> prices = pd.DataFrame({"close": 100.0 + np.arange(61)}, index=sessions("2024-01-02", "2024-03-28"))
    >>> Drift(lookback=20, calibration=20).fit(prices).predict(3)["point"].tolist()
    [161.0, 162.0, 163.0]
    """

    name = "drift"

    def __init__(self, lookback: int = 252, calibration: int = 250, interval: str = "plain") -> None:
        self.lookback = lookback
        self.calibration = calibration
        self.interval = interval

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        k = np.minimum(self.lookback, t)
        slope = np.where(k > 0, (close[t] - close[t - k]) / np.maximum(k, 1), 0.0)
        return close[t] + h * slope


class MovingAverage(_Baseline):
    """Mean of the last ``window`` closes (all rows if fewer), the same for every horizon.

    >>> import numpy as np, pandas as pd
    >>> from forecaster.data.calendar import sessions
    >>> prices = pd.DataFrame({"close": 100.0 + np.arange(61)}, index=sessions("2024-01-02", "2024-03-28"))
    >>> MovingAverage(window=4, calibration=20).fit(prices).predict(3)["point"].tolist()
    [158.5, 158.5, 158.5]
    """

    name = "moving_average"

    def __init__(self, window: int = 20, calibration: int = 250, interval: str = "plain") -> None:
        self.window = window
        self.calibration = calibration
        self.interval = interval

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        csum = np.concatenate(([0.0], np.cumsum(close)))
        start = np.maximum(t + 1 - self.window, 0)
        return (csum[t + 1] - csum[start]) / (t + 1 - start) + 0.0 * h


class SES(_Baseline):
    """Simple exponential smoothing: ``level_t = alpha * close_t + (1 - alpha) * level_{t-1}``, flat over horizons.

    ``alpha=None`` fits it by least squares of the one-step errors on the rows before the calibration window
    (``SESOptimized`` in statsforecast), so the calibration residuals stay out of sample.

    >>> import numpy as np, pandas as pd
    >>> from forecaster.data.calendar import sessions
    >>> prices = pd.DataFrame({"close": 100.0 + np.arange(61)}, index=sessions("2024-01-02", "2024-03-28"))
    >>> SES(alpha=0.5, calibration=20).fit(prices).predict(2)["point"].round(6).tolist()  # lags a trend by 1/alpha - 1
    [159.0, 159.0]
    """

    name = "ses"

    def __init__(self, alpha: float | None = None, calibration: int = 250, interval: str = "plain") -> None:
        self.alpha = alpha
        self.calibration = calibration
        self.interval = interval

    def fit(self, prices: pd.DataFrame) -> Self:
        """Store the closes and fix ``alpha_`` (given, or fitted before the calibration window)."""
        super().fit(prices)
        head = self.close_[: max(self.close_.size - self.calibration - 10, 0)]
        self.alpha_ = self.alpha if self.alpha is not None else _fit_alpha(head)
        return self

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        return _ses_levels(close, self.alpha_)[t] + 0.0 * h


def _ses_levels(close: np.ndarray, alpha: float) -> np.ndarray:
    """SES levels at every row, started at the first close (one linear recursive filter)."""
    levels, _ = lfilter([alpha], [1.0, alpha - 1.0], close, zi=[(1.0 - alpha) * close[0]])
    return levels


def _fit_alpha(close: np.ndarray) -> float:
    """The alpha in [0.01, 1] that minimises the one-step squared errors on ``close`` (1 = naive if too short)."""
    if close.size < 20:
        return 1.0

    def sse(alpha: float) -> float:
        return float(((close[1:] - _ses_levels(close, alpha)[:-1]) ** 2).sum())

    return float(minimize_scalar(sse, bounds=(0.01, 1.0), method="bounded").x)


LONG_RUN = 250  # sessions in the long-run mean variance that a mean-reverting range scale reverts to


def range_term_structure(prices: pd.DataFrame, horizon: int, persistence: float) -> np.ndarray:
    """h-day log-return volatility at each row from the range EWMA, mean-reverting: ``(n, horizon)``.

    With ``v`` the EWMA (lambda 0.94) of the Garman-Klass + gap² variances and ``m`` their mean over the last
    :data:`LONG_RUN` bars (both known at the row), day ``k`` ahead gets ``m + persistence**(k - 1) * (v - m)`` and
    the h-day scale is the square root of the sum over ``k = 1..h``; ``persistence = 1`` is ``sqrt(h) * sqrt(v)``.
    """
    var = daily_variance(prices, "gk_gap").clip(lower=0.0)
    v = ewma_mean(var.to_numpy())
    m = var.rolling(LONG_RUN, min_periods=20).mean().to_numpy()
    m = np.where(np.isfinite(m), m, v)
    decay = persistence ** np.arange(horizon)
    daily = m[:, None] + decay[None, :] * (v - m)[:, None]
    return np.maximum(np.sqrt(np.cumsum(daily, axis=1)), 1e-6)


class RangeEWMA(Naive):
    """Naive point, intervals scaled by an EWMA (lambda 0.94) of Garman-Klass plus overnight-gap² variances.

    ``persistence = 1`` (default) scales horizon ``h`` by ``sqrt(h)``; below 1 the daily variance reverts to its
    250-session mean (:func:`range_term_structure`), as GARCH and HAR forecasts do.

    >>> import numpy as np, pandas as pd
    >>> from forecaster.data.calendar import sessions
    >>> c = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.02, 61)))
    >>> prices = pd.DataFrame({"open": c, "high": c * 1.02, "low": c / 1.02, "close": c},
    ...                       index=sessions("2024-01-02", "2024-03-28"))
    >>> RangeEWMA(calibration=20).fit(prices).predict(3)["point"].round(2).tolist() == [round(c[-1], 2)] * 3
    True
    """

    name = "range_ewma"

    def __init__(self, calibration: int = 250, interval: str = "gk_gap", persistence: float = 1.0) -> None:
        super().__init__(calibration=calibration, interval=interval)
        self.persistence = persistence

    def fit(self, prices: pd.DataFrame) -> Self:
        """Store the prices; the scales of every row follow on first use."""
        self.terms_: dict[int, np.ndarray] = {}
        return super().fit(prices)

    def _scale(self, t: np.ndarray, horizon: int) -> np.ndarray:
        if self.persistence >= 1.0:
            return super()._scale(t, horizon)
        if horizon not in self.terms_:
            self.terms_[horizon] = range_term_structure(self.prices_, horizon, self.persistence)
        return self.terms_[horizon][t]


class Garch(Naive):
    """Naive point, intervals scaled by a GARCH(1,1) Student-t forecast of the h-day variance (``arch``).

    ``fit`` estimates the parameters on the ``fit_window`` daily log returns that end before the first calibration
    origin's target, so the conformal scores stay out of sample; ``update`` keeps them (the walk forward refits on
    its cadence) and only filters the new returns. The scale of horizon ``h`` at origin ``t`` is the square root
    of the sum of the analytic variance forecasts for ``t + 1 .. t + h``: it mean-reverts toward the unconditional
    variance as ``h`` grows, where the square-root-of-time rule of an EWMA does not.
    """

    name = "garch"
    MIN_RETURNS = 100

    def __init__(self, calibration: int = 250, fit_window: int = 1500, dist: Literal["t", "normal"] = "t") -> None:
        self.calibration = calibration
        self.fit_window = fit_window
        self.dist = dist
        self.interval = "garch"

    def fit(self, prices: pd.DataFrame) -> Self:
        """Store the closes, estimate ``params_`` before the calibration window, filter every return."""
        self._store(prices)
        first, stop = self._window()
        if stop - first < self.MIN_RETURNS:
            raise NotEnoughDataError(
                f"garch: {len(prices)} rows leave {max(stop - first, 0)} returns before the {self.calibration}-origin "
                f"calibration window; need at least {self.MIN_RETURNS}"
            )
        self.params_ = self._estimate(self._returns(first, stop))
        return self._filter()

    def update(self, prices: pd.DataFrame, *, finetune: bool = True) -> Self:
        """Move the origin; keep ``params_`` and filter the new returns (``finetune`` changes nothing)."""
        if not hasattr(self, "params_"):
            return self.fit(prices)
        self._store(prices)
        return self._filter()

    def _store(self, prices: pd.DataFrame) -> None:
        super().fit(prices)

    def _volatility(self, prices: pd.DataFrame) -> np.ndarray:
        return np.ones(len(prices))  # unused: the scale is ``scales_``

    def _window(self) -> tuple[int, int]:
        """Rows ``[first, stop)`` of the returns the parameters are fitted on (return row ``t`` ends at close ``t``):
        the calibration targets are rows ``n - calibration .. n - 1``, so ``stop = n - calibration``."""
        stop = self.close_.size - self.calibration
        return max(1, stop - self.fit_window), stop

    def _returns(self, first: int, stop: int) -> np.ndarray:
        return 100.0 * np.diff(np.log(self.close_[first - 1 : stop]))

    def _model(self, returns: np.ndarray):  # -> arch ARCHModel
        from arch import arch_model

        return arch_model(returns, mean="Zero", vol="GARCH", p=1, q=1, dist=self.dist, rescale=False)

    def _estimate(self, returns: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arch's ConvergenceWarning: the last iterate is still usable
            result = self._model(returns).fit(disp="off", show_warning=False)
        if result.convergence_flag:
            logger.warning("garch: optimiser flag %s at %s", result.convergence_flag, self.origin_.date())
        return np.asarray(result.params, dtype=float)

    def _filter(self, horizon: int = 5) -> Self:
        """``scales_``: ``(n, horizon)`` h-day log-return volatility at each origin row (NaN before the window)."""
        n = self.close_.size
        first = self._window()[0]
        start = max(n - self.calibration - 2 * horizon, first) - first  # arch index of the first origin needed
        forecast = (
            self._model(self._returns(first, n)).fix(self.params_).forecast(horizon=horizon, start=start, reindex=False)
        )
        self.scales_ = np.full((n, horizon), np.nan)
        self.scales_[first + start :] = np.sqrt(np.cumsum(forecast.variance.to_numpy(), axis=1)) / 100.0
        return self

    def _scale(self, t: np.ndarray, horizon: int) -> np.ndarray:
        if horizon > self.scales_.shape[1]:
            self._filter(horizon)
        return self.scales_[t, :horizon]
