"""Feature frames, targets, sliding windows and train-only scalers.

Every feature at date t uses only rows dated <= t (backward-looking rolling windows), and every scaler is
fitted on the training rows only; :class:`WindowedData` makes that split explicit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from forecaster.errors import ConfigError, NotEnoughDataError

Scaler: TypeAlias = StandardScaler | MinMaxScaler


def _log_return(p: pd.DataFrame) -> pd.Series:
    return np.log(p["close"]).diff()


LN2 = float(np.log(2.0))
VARIANCES: tuple[str, ...] = ("r2", "parkinson", "garman_klass", "rogers_satchell", "gap2", "gk_gap")


def daily_variance(prices: pd.DataFrame, kind: str) -> pd.Series:
    """One-day log-return variance estimate of each bar, known at its close (the first row of ``r2``/gaps is NaN).

    * ``r2``: squared close-to-close log return;
    * ``parkinson``: ``(ln H/L)^2 / (4 ln 2)``;
    * ``garman_klass``: ``0.5 (ln H/L)^2 - (2 ln 2 - 1)(ln C/O)^2`` (open-to-close only);
    * ``rogers_satchell``: ``ln(H/C) ln(H/O) + ln(L/C) ln(L/O)``;
    * ``gap2``: squared overnight gap ``(ln O - ln C_prev)^2``;
    * ``gk_gap``: ``garman_klass + gap2``, a close-to-close variance from the whole bar.
    """
    o, h, lo, c = (np.log(prices[k].astype(float)) for k in ("open", "high", "low", "close"))
    if kind == "r2":
        return c.diff() ** 2
    if kind == "parkinson":
        return (h - lo) ** 2 / (4.0 * LN2)
    if kind == "garman_klass":
        return 0.5 * (h - lo) ** 2 - (2.0 * LN2 - 1.0) * (c - o) ** 2
    if kind == "rogers_satchell":
        return (h - c) * (h - o) + (lo - c) * (lo - o)
    if kind == "gap2":
        return (o - c.shift(1)) ** 2
    if kind == "gk_gap":
        return daily_variance(prices, "garman_klass") + daily_variance(prices, "gap2")
    raise ConfigError(f"unknown variance '{kind}': known are {', '.join(VARIANCES)}")


def _log_vol(kind: str, window: int) -> Callable[[pd.DataFrame], pd.Series]:
    """``0.5 * log`` of the mean ``kind`` variance over the last ``window`` bars (floored): a HAR-style input."""

    def feature(p: pd.DataFrame) -> pd.Series:
        var = daily_variance(p, kind).clip(lower=0.0).rolling(window).mean()
        return 0.5 * np.log(var + VAR_FLOOR)

    return feature


VAR_FLOOR = 1e-8


_FEATURES: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "open": lambda p: p["open"],
    "high": lambda p: p["high"],
    "low": lambda p: p["low"],
    "close": lambda p: p["close"],
    "volume": lambda p: p["volume"],
    "log_return": _log_return,
    "log_range": lambda p: np.log(p["high"] / p["low"]),
    "log_body": lambda p: np.log(p["close"] / p["open"]),
    "volume_change": lambda p: np.log1p(p["volume"]).diff(),
    "vol_20": lambda p: _log_return(p).rolling(20).std(),
    "sma_ratio_10": lambda p: p["close"] / p["close"].rolling(10).mean() - 1.0,
    "sharpe_252": lambda p: (
        p["close"].pct_change().rolling(252).mean() / p["close"].pct_change().rolling(252).std() * np.sqrt(252)
    ),
    # log volatilities (HAR-style 1/5/22-day means of a daily variance estimate)
    **{f"lv_{k}_{w}": _log_vol(k, w) for k in ("gk_gap", "parkinson", "rogers_satchell", "r2") for w in (1, 5, 22)},
    "gap": lambda p: np.log(p["open"]) - np.log(p["close"].shift(1)),
}
FEATURE_NAMES: tuple[str, ...] = tuple(_FEATURES)
WARMUP: dict[str, int] = {"vol_20": 20, "sma_ratio_10": 9, "sharpe_252": 252, "log_return": 1, "volume_change": 1,
                          "gap": 1}  # fmt: skip
WARMUP |= {f: int(f.rsplit("_", 1)[1]) for f in FEATURE_NAMES if f.startswith("lv_")}  # r2/gap rows start at row 1


def warmup_rows(features: tuple[str, ...]) -> int:
    """Rows lost at the start of a frame before every feature is defined."""
    return max([WARMUP.get(f, 0) for f in features] + [0])


def compute_features(prices: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """Feature frame on the same index as ``prices``; the first warm-up rows are NaN."""
    unknown = [f for f in features if f not in _FEATURES]
    if unknown:
        raise ConfigError(f"unknown feature(s) {unknown}: known are {', '.join(FEATURE_NAMES)}")
    return pd.DataFrame({f: _FEATURES[f](prices) for f in features}, index=prices.index).astype("float64")


def compute_targets(close: pd.Series, horizon: int, target: str) -> np.ndarray:
    """Targets for horizons 1..H at each origin: cumulative log returns or future closes (NaN past the end)."""
    values = close.to_numpy(dtype="float64")
    out = np.full((len(values), horizon), np.nan)
    for h in range(1, horizon + 1):
        future = np.full(len(values), np.nan)
        future[:-h] = values[h:]
        out[:, h - 1] = np.log(future / values) if target == "log_return" else future
    return out


def make_scaler(kind: str) -> Scaler:
    """A fresh sklearn scaler: ``standard`` or ``minmax``."""
    return StandardScaler() if kind == "standard" else MinMaxScaler()


def windows(values: np.ndarray, window: int) -> np.ndarray:
    """Sliding windows ``(n - window + 1, window, n_features)``; row i ends at values[i + window - 1]."""
    return np.ascontiguousarray(sliding_window_view(values, window, axis=0).transpose(0, 2, 1))


@dataclass
class WindowedData:
    """Features and targets of one price frame, aligned by origin (the last row of each window).

    Attributes:
        origins: the date of each sample's last input row (the forecast origin).
        x_raw: unscaled feature rows, one per date from the first fully-defined row.
        targets: (n_dates, H) targets per date (NaN where the future is not known yet).
        close: closes on the same dates.
        variance: the Garman-Klass + overnight-gap² variance of each date's bar (NaN without OHLC columns).
    """

    dates: pd.DatetimeIndex
    x_raw: np.ndarray
    targets: np.ndarray
    close: np.ndarray
    window: int
    variance: np.ndarray

    @classmethod
    def build(cls, prices: pd.DataFrame, features: tuple[str, ...], window: int, horizon: int, target: str):
        """Compute features and targets, dropping the warm-up rows."""
        feats = compute_features(prices, features)
        skip = warmup_rows(features)
        needed = skip + window
        if len(prices) < needed + 1:
            raise NotEnoughDataError(
                f"{len(prices)} rows of prices but window {window} plus {skip} warm-up rows needs at least {needed + 1}"
            )
        tgt = compute_targets(prices["close"], horizon, target)
        ohlc = all(c in prices.columns for c in ("open", "high", "low"))
        variance = daily_variance(prices, "gk_gap").to_numpy() if ohlc else np.full(len(prices), np.nan)
        return cls(
            dates=pd.DatetimeIndex(prices.index[skip:]),
            x_raw=feats.to_numpy()[skip:],
            targets=tgt[skip:],
            close=prices["close"].to_numpy(dtype="float64")[skip:],
            window=window,
            variance=variance[skip:],
        )

    @property
    def n_origins(self) -> int:
        """Number of dates that can serve as a forecast origin (have a full window)."""
        return len(self.dates) - self.window + 1

    def origin_index(self, i: int) -> int:
        """Row index (into dates/close/targets) of sample i's origin."""
        return i + self.window - 1

    def x_windows(self, scaler: Scaler, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Scaled input windows for samples ``start..stop`` (float32)."""
        stop = self.n_origins if stop is None else stop
        rows = self.x_raw[start : stop + self.window - 1]
        return windows(scaler.transform(rows).astype("float32"), self.window)

    def future_range_volatility(self, horizon: int) -> np.ndarray:
        """``sqrt`` of the summed :attr:`variance` of the ``h`` dates after each date, h = 1..horizon: ``(n, H)``
        (NaN where the future is not known yet)."""
        csum = np.concatenate(([0.0], np.cumsum(np.clip(self.variance, 0.0, None))))
        n = len(self.dates)
        out = np.full((n, horizon), np.nan)
        for h in range(1, horizon + 1):
            out[: n - h, h - 1] = np.sqrt(csum[1 + h : n + 1] - csum[1 : n + 1 - h])
        return out

    def labelled(self) -> int:
        """Number of leading samples whose every target is known."""
        known = ~np.isnan(self.targets[self.window - 1 :]).any(axis=1)
        return int(np.argmin(known)) if not known.all() else len(known)
