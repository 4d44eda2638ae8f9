"""Split-conformal intervals (80%, 95%) in price space and the forecast frame shared by every forecaster.

Intervals are multiplicative: with ``q`` the conformal quantile of ``|log(actual / point)|`` for a horizon,
the interval is ``[point * exp(-q), point * exp(+q)]``, so it is always positive and scales with the price.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.base import FORECAST_COLUMNS
from forecaster.calendar import next_sessions
from forecaster.errors import NotEnoughDataError

LEVELS: tuple[float, ...] = (0.80, 0.95)
MIN_RESIDUALS = 10


def log_residuals(actual: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Log residuals ``log(actual / point)`` (elementwise, broadcasting like numpy)."""
    return np.log(np.asarray(actual, dtype=float) / np.asarray(point, dtype=float))


def _conformal_rank(n: int, level: float) -> int:
    """The 1-based order statistic ``ceil((n + 1) * level)`` capped at ``n``, ignoring float noise (8.0000001)."""
    return min(math.ceil((n + 1) * level - 1e-9), n)


def conformal_quantiles(
    abs_log_residuals: np.ndarray, levels: tuple[float, ...] = LEVELS, *, min_residuals: int = MIN_RESIDUALS
) -> dict[float, np.ndarray]:
    """Split-conformal quantiles of out-of-sample ``|log(actual / point)|`` residuals, per horizon.

    For each horizon the ``n`` finite residuals are sorted and the ``ceil((n + 1) * level)``-th smallest is
    returned, i.e. the empirical quantile at the finite-sample corrected rank ``ceil((n + 1) * level) / n``
    (capped at 1, so small ``n`` at high levels gives the largest residual). This is
    ``np.quantile(r, rank, method="inverted_cdf")``; ``method="higher"`` would pick one order statistic too high.

    Args:
        abs_log_residuals: shape ``(n, H)`` (a 1-D array means ``H = 1``); non-finite values are ignored.
        levels: nominal coverage levels in ``(0, 1)``.
        min_residuals: fewest finite residuals accepted per horizon.

    Returns:
        ``{level: array of shape (H,)}``.

    Raises:
        NotEnoughDataError: a horizon has fewer than ``min_residuals`` finite residuals.
    """
    res = np.asarray(abs_log_residuals, dtype=float)
    res = res[:, None] if res.ndim == 1 else res
    if res.ndim != 2:
        raise ValueError(f"residuals must be 1-D or 2-D (n, H), got shape {res.shape}")
    bad = [lv for lv in levels if not 0 < lv < 1]
    if bad:
        raise ValueError(f"levels must lie in (0, 1), got {bad}")
    out = {lv: np.empty(res.shape[1]) for lv in levels}
    for h in range(res.shape[1]):
        col = np.abs(res[:, h][np.isfinite(res[:, h])])
        if col.size < min_residuals:
            raise NotEnoughDataError(
                f"conformal calibration needs at least {min_residuals} residuals for horizon {h + 1}, got {col.size}"
            )
        col.sort()
        for lv in levels:
            out[lv][h] = col[_conformal_rank(col.size, lv) - 1]
    return out


def _level_suffix(level: float) -> str:
    return str(round(level * 100))


def forecast_frame(
    origin: pd.Timestamp, last_close: float, points: np.ndarray, quantiles: dict[float, np.ndarray]
) -> pd.DataFrame:
    """Build the :data:`~forecaster.base.FORECAST_COLUMNS` frame for horizons ``1..H``.

    Args:
        origin: the last session whose close the forecast knows.
        last_close: close on ``origin``.
        points: point forecasts for horizons ``1..H`` (price space).
        quantiles: ``{0.80: q, 0.95: q}`` from :func:`conformal_quantiles`, each of shape ``(H,)``.

    Returns:
        One row per horizon; target dates are the next ``H`` NYSE sessions after ``origin``;
        ``lo = point * exp(-q)`` and ``hi = point * exp(q)``.
    """
    pts = np.asarray(points, dtype=float).reshape(-1)
    n_h = pts.size
    if n_h == 0:
        raise ValueError("points is empty: need at least one horizon")
    missing = [lv for lv in LEVELS if lv not in quantiles]
    if missing:
        raise ValueError(f"quantiles lack level(s) {missing}; got {sorted(quantiles)}")
    origin_ts = pd.Timestamp(origin).normalize()
    frame = pd.DataFrame(
        {
            "as_of": pd.DatetimeIndex([origin_ts] * n_h).astype("datetime64[ns]"),
            "horizon": np.arange(1, n_h + 1, dtype="int64"),
            "target_date": next_sessions(origin_ts, n_h).astype("datetime64[ns]"),
            "naive": np.full(n_h, float(last_close)),
            "point": pts,
        }
    )
    for lv in LEVELS:
        q = np.asarray(quantiles[lv], dtype=float).reshape(-1)
        if q.size != n_h:
            raise ValueError(f"quantiles[{lv}] has {q.size} values but there are {n_h} horizons")
        frame[f"lo{_level_suffix(lv)}"] = pts * np.exp(-q)
        frame[f"hi{_level_suffix(lv)}"] = pts * np.exp(q)
    return frame.loc[:, list(FORECAST_COLUMNS)]
