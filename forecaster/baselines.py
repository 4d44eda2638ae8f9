"""Baseline forecasters (naive, drift, moving average) with honest empirical conformal intervals.

Every baseline implements :class:`forecaster.base.Forecaster`. A baseline only defines ``_points(close, t, h)``: the
point forecast for horizon ``h`` made at origin index ``t`` from ``close[: t + 1]`` (vectorised over arrays of
``t`` and ``h``). The shared :class:`_Baseline` uses it twice: at the last row for the forecast, and at the last
``calibration`` past origins of the fitted frame for the out-of-sample residuals behind the intervals. A past
origin ``t`` is scored against ``close[t + h]`` only when that row is in the frame, so nothing after the origin
of the forecast is ever used.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecaster.errors import NotEnoughDataError, NotFittedError
from forecaster.forecasting import conformal_quantiles, forecast_frame, log_residuals


class _Baseline:
    """Shared fit/update/predict and conformal calibration; subclasses define ``name`` and ``_points``."""

    name: str = "baseline"
    calibration: int

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
        return self

    def update(self, prices: pd.DataFrame, *, finetune: bool = True) -> Self:
        """Same as :meth:`fit`: baselines have nothing costly to learn (``finetune`` changes nothing)."""
        return self.fit(prices)

    def _check_fitted(self) -> None:
        if not hasattr(self, "close_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(prices) first")

    def calibration_residuals(self, horizon: int) -> np.ndarray:
        """Out-of-sample ``|log(actual / point)|`` of the last ``calibration`` origins per horizon.

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
        return np.where(valid, res, np.nan)

    def predict(self, horizon: int) -> pd.DataFrame:
        """Forecast ``horizon`` sessions after the origin (frame with :data:`~forecaster.base.FORECAST_COLUMNS`)."""
        self._check_fitted()
        if int(horizon) < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        h = np.arange(1, int(horizon) + 1)
        points = self._points(self.close_, np.full(h.size, self.close_.size - 1), h)
        quantiles = conformal_quantiles(self.calibration_residuals(int(horizon)))
        return forecast_frame(self.origin_, self.last_close_, points, quantiles)


class Naive(_Baseline):
    """Persistence: every horizon forecasts the last close.

    >>> import numpy as np, pandas as pd
    >>> from forecaster.calendar import sessions
    >>> prices = pd.DataFrame({"close": 100.0 + np.arange(61)}, index=sessions("2024-01-02", "2024-03-28"))
    >>> Naive(calibration=20).fit(prices).predict(3)["point"].tolist()
    [160.0, 160.0, 160.0]
    """

    name = "naive"

    def __init__(self, calibration: int = 250) -> None:
        self.calibration = calibration

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        return close[t] + 0.0 * h


class Drift(_Baseline):
    """Random walk with drift: ``last + h * (last - close[-lookback-1]) / lookback`` (all rows if fewer).

    >>> import numpy as np, pandas as pd
    >>> from forecaster.calendar import sessions
    >>> prices = pd.DataFrame({"close": 100.0 + np.arange(61)}, index=sessions("2024-01-02", "2024-03-28"))
    >>> Drift(lookback=20, calibration=20).fit(prices).predict(3)["point"].tolist()
    [161.0, 162.0, 163.0]
    """

    name = "drift"

    def __init__(self, lookback: int = 252, calibration: int = 250) -> None:
        self.lookback = lookback
        self.calibration = calibration

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        k = np.minimum(self.lookback, t)
        slope = np.where(k > 0, (close[t] - close[t - k]) / np.maximum(k, 1), 0.0)
        return close[t] + h * slope


class MovingAverage(_Baseline):
    """Mean of the last ``window`` closes (all rows if fewer), the same for every horizon.

    >>> import numpy as np, pandas as pd
    >>> from forecaster.calendar import sessions
    >>> prices = pd.DataFrame({"close": 100.0 + np.arange(61)}, index=sessions("2024-01-02", "2024-03-28"))
    >>> MovingAverage(window=4, calibration=20).fit(prices).predict(3)["point"].tolist()
    [158.5, 158.5, 158.5]
    """

    name = "moving_average"

    def __init__(self, window: int = 20, calibration: int = 250) -> None:
        self.window = window
        self.calibration = calibration

    def _points(self, close: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        csum = np.concatenate(([0.0], np.cumsum(close)))
        start = np.maximum(t + 1 - self.window, 0)
        return (csum[t + 1] - csum[start]) / (t + 1 - start) + 0.0 * h
