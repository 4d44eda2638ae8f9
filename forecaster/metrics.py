"""Forecast accuracy metrics: plain functions of 1-D arrays, scikit-learn wrappers where it has the metric.

Every metric takes equal-length, non-empty, finite 1-D arrays and raises ``ValueError`` naming the lengths or
the bad values otherwise. :func:`evaluate` composes them for one horizon of a forecast frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

EVALUATE_COLUMNS: tuple[str, ...] = ("actual", "point", "naive", "lo80", "hi80", "lo95", "hi95")


def _arrays(**named: object) -> list[np.ndarray]:
    """Convert to float 1-D arrays; check non-empty, equal lengths and finite values."""
    arrays = {name: np.asarray(value, dtype=float) for name, value in named.items()}
    for name, arr in arrays.items():
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    lengths = {name: arr.size for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("inputs differ in length: " + ", ".join(f"{k} has {v}" for k, v in lengths.items()))
    if 0 in lengths.values():
        raise ValueError(f"inputs are empty: {', '.join(lengths)} have 0 values")
    for name, arr in arrays.items():
        bad = int((~np.isfinite(arr)).sum())
        if bad:
            raise ValueError(f"{name} has {bad} non-finite value(s) out of {arr.size}")
    return list(arrays.values())


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    t, p = _arrays(y_true=y_true, y_pred=y_pred)
    return float(skm.root_mean_squared_error(t, p))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    t, p = _arrays(y_true=y_true, y_pred=y_pred)
    return float(skm.mean_absolute_error(t, p))


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, in PERCENT (``100 * mean(|y - yhat| / |y|)``), e.g. ``2.5`` for 2.5%."""
    t, p = _arrays(y_true=y_true, y_pred=y_pred)
    return float(100.0 * skm.mean_absolute_percentage_error(t, p))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination R² (NaN for fewer than two values, as in scikit-learn)."""
    t, p = _arrays(y_true=y_true, y_pred=y_pred)
    if t.size < 2:
        return float("nan")
    return float(skm.r2_score(t, p))


def naive_scale(train_close: np.ndarray) -> float:
    """MASE scale: in-sample MAE of the 1-step naive forecast, ``mean(|diff(train_close)|)``.

    Compute it on the TRAINING closes only (data dated before the first evaluated forecast).
    """
    (close,) = _arrays(train_close=train_close)
    if close.size < 2:
        raise ValueError(f"naive_scale needs at least 2 training closes, got {close.size}")
    return float(np.mean(np.abs(np.diff(close))))


def mase(y_true: np.ndarray, y_pred: np.ndarray, *, scale: float) -> float:
    """Mean absolute scaled error: ``mae(y_true, y_pred) / scale`` with ``scale`` from :func:`naive_scale`."""
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    return mae(y_true, y_pred) / float(scale)


def theil_u2(y_true: np.ndarray, y_pred: np.ndarray, y_naive: np.ndarray) -> float:
    """Theil's U2: ``rmse(model) / rmse(naive)``; below 1 beats the naive forecast (NaN if the naive is exact)."""
    t, p, n = _arrays(y_true=y_true, y_pred=y_pred, y_naive=y_naive)
    denom = rmse(t, n)
    return rmse(t, p) / denom if denom > 0 else float("nan")


def directional_accuracy(y_true: np.ndarray, y_pred: np.ndarray, y_last: np.ndarray) -> float:
    """Share of cases where ``sign(pred - last) == sign(true - last)``.

    Cases where the actual equals the last close exactly (no direction) are excluded; a prediction equal to the
    last close counts as a miss. Returns NaN when every case is excluded.
    """
    t, p, last = _arrays(y_true=y_true, y_pred=y_pred, y_last=y_last)
    moved = t != last
    if not moved.any():
        return float("nan")
    return float(np.mean(np.sign(p[moved] - last[moved]) == np.sign(t[moved] - last[moved])))


def _interval(lo: np.ndarray, hi: np.ndarray, **more: object) -> list[np.ndarray]:
    arrays = _arrays(**more, lo=lo, hi=hi)
    crossed = int((arrays[-2] > arrays[-1]).sum())
    if crossed:
        raise ValueError(f"lo exceeds hi in {crossed} of {arrays[-1].size} intervals")
    return arrays


def coverage(y_true: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of actuals inside their interval, ``lo <= y <= hi`` (compare with the nominal level)."""
    t, low, high = _interval(lo, hi, y_true=y_true)
    return float(np.mean((low <= t) & (t <= high)))


def interval_width(lo: np.ndarray, hi: np.ndarray) -> float:
    """Mean absolute interval width ``mean(hi - lo)``, in price units (like RMSE and MAE)."""
    low, high = _interval(lo, hi)
    return float(np.mean(high - low))


def evaluate(frame: pd.DataFrame, *, scale: float, naive_col: str = "naive") -> dict[str, float]:
    """All metrics for ONE horizon of a forecast frame joined to its actuals.

    Args:
        frame: columns ``actual, point, naive, lo80, hi80, lo95, hi95`` (plus ``naive_col``). Rows whose
            ``actual`` is missing (not yet matured) are dropped; ``n`` counts the rows evaluated.
        scale: MASE scale from :func:`naive_scale` on the training closes.
        naive_col: the naive forecast for U2 and the reference for direction (the last close).

    Returns:
        ``rmse, mae, mape (%), r2, mase, u2, directional_accuracy, coverage80, coverage95, width80, width95, n``.
    """
    missing = [c for c in (*EVALUATE_COLUMNS, naive_col) if c not in frame.columns]
    if missing:
        raise ValueError(f"evaluate needs column(s) {missing}; frame has {list(frame.columns)}")
    if "horizon" in frame.columns and frame["horizon"].nunique() > 1:
        raise ValueError(f"evaluate takes one horizon, frame has {sorted(frame['horizon'].unique().tolist())}")
    df = frame.loc[frame["actual"].notna()]
    y, yhat, naive = df["actual"], df["point"], df[naive_col]
    return {
        "rmse": rmse(y, yhat),
        "mae": mae(y, yhat),
        "mape": mape(y, yhat),
        "r2": r2(y, yhat),
        "mase": mase(y, yhat, scale=scale),
        "u2": theil_u2(y, yhat, naive),
        "directional_accuracy": directional_accuracy(y, yhat, df["naive"]),
        "coverage80": coverage(y, df["lo80"], df["hi80"]),
        "coverage95": coverage(y, df["lo95"], df["hi95"]),
        "width80": interval_width(df["lo80"], df["hi80"]),
        "width95": interval_width(df["lo95"], df["hi95"]),
        "n": float(len(df)),
    }
