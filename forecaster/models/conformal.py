"""Volatility-aware conformal intervals (80%, 95%) in price space and the forecast frame shared by every forecaster.

Intervals are multiplicative: with ``sigma_h`` a log-return scale for horizon ``h`` known at the origin and
``q_h`` the conformal quantile of the normalised out-of-sample scores ``|log(actual / point)| / sigma_h``, the
interval is ``[point * exp(-q_h * sigma_h), point * exp(+q_h * sigma_h)]``: always positive, proportional to the
price, wider on wild days. ``sigma = 1`` is plain split-conformal. Scales:

* ``plain``: 1;
* ``ewma``: RiskMetrics (lambda 0.94) one-day volatility of the log returns up to the origin, times ``sqrt(h)``;
* ``head``: the LSTM's own scale forecast (see :mod:`forecaster.models.lstm`).

``quantile`` replaces the symmetric band by conformalised quantile regression (CQR, Romano, Patterson and Candès
2019): a head forecasts the :data:`QUANTILE_LEVELS` quantiles of the normalised h-day log return ``z``; the score of
a band ``[q_lo, q_hi]`` is ``max(q_lo - z, z - q_hi)`` (:func:`cqr_scores`, negative inside the band) and the
band becomes ``[q_lo - Q, q_hi + Q]`` with ``Q`` the conformal quantile of the signed scores (:func:`cqr_quantiles`).

:func:`aci_levels` adds adaptive conformal inference (Gibbs and Candès 2021) on top of any of them.
"""

from __future__ import annotations

import bisect
import math
from typing import Literal

import numpy as np
import pandas as pd

from forecaster.data.calendar import next_sessions
from forecaster.errors import NotEnoughDataError
from forecaster.models.base import FORECAST_COLUMNS

LEVELS: tuple[float, ...] = (0.80, 0.95)
MIN_RESIDUALS = 10
Interval = Literal["plain", "ewma", "head", "quantile"]
INTERVALS: tuple[str, ...] = ("plain", "ewma", "head", "quantile")
QUANTILE_LEVELS: tuple[float, ...] = (0.025, 0.10, 0.90, 0.975)  # the quantile head's outputs, ascending
BAND_QUANTILES: dict[float, tuple[int, int]] = {0.80: (1, 2), 0.95: (0, 3)}  # level -> (lo, hi) in QUANTILE_LEVELS
EWMA_LAMBDA, EWMA_SPAN = 0.94, 100  # RiskMetrics decay; 0.94**100 = 0.2%, so a finite window changes nothing
SIGMA_FLOOR = 1e-6


def ewma_volatility(close: np.ndarray, lam: float = EWMA_LAMBDA, span: int = EWMA_SPAN) -> np.ndarray:
    """One-day log-return volatility known at each row (RiskMetrics EWMA over the last ``span`` returns).

    ``sigma[t]`` is the square root of the ``lam``-weighted mean of the squared log returns up to and including
    row ``t`` (the newest weighs 1, the one before ``lam``, ...; fewer than ``span`` at the start). It depends only
    on the last ``span + 1`` closes, so any frame holding them gives the same value. Row 0 is NaN.
    """
    values = np.asarray(close, dtype=float)
    r2 = np.diff(np.log(values)) ** 2
    return np.concatenate(([np.nan], np.sqrt(ewma_mean(r2, lam, span))))


def ewma_mean(values: np.ndarray, lam: float = EWMA_LAMBDA, span: int = EWMA_SPAN) -> np.ndarray:
    """``lam``-weighted mean of the last ``span`` values up to and including each row (newest weighs 1).

    Non-finite values (a leading NaN) count as missing: they get no weight. Rows with no value yet are NaN.
    """
    x = np.asarray(values, dtype=float)
    ok = np.isfinite(x)
    weights = lam ** np.arange(span)
    num = np.convolve(np.where(ok, x, 0.0), weights)[: x.size]
    den = np.convolve(ok.astype(float), weights)[: x.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def horizon_scale(sigma1: np.ndarray, horizon: int) -> np.ndarray:
    """``sigma1 * sqrt(h)`` for h = 1..horizon, floored: shape ``(n, horizon)`` (the square-root-of-time rule)."""
    base = np.asarray(sigma1, dtype=float).reshape(-1, 1)
    return np.maximum(base * np.sqrt(np.arange(1, horizon + 1))[None, :], SIGMA_FLOOR)


def aci_levels(
    scores: np.ndarray, levels: tuple[float, ...] = LEVELS, *, gamma: float, warmup: int = 2 * MIN_RESIDUALS
) -> dict[float, np.ndarray]:
    """Adaptive conformal inference (Gibbs and Candès 2021): the level to use next, per horizon.

    Replays the chronological scores (oldest first): from ``warmup`` on, each score is compared with the
    conformal quantile of the scores before it at the current level ``1 - alpha_t``, and
    ``alpha_{t+1} = alpha_t + gamma * (alpha - miss_t)``: a miss widens the next interval, a hit narrows it.

    Returns:
        ``{level: array of shape (H,)}`` of levels clipped to [0.5, 0.999]; ``gamma = 0`` returns ``level``.
    """
    res = np.asarray(scores, dtype=float)
    res = res[:, None] if res.ndim == 1 else res
    out = {lv: np.full(res.shape[1], lv) for lv in levels}
    if gamma <= 0:
        return out
    for h in range(res.shape[1]):
        col = res[:, h][np.isfinite(res[:, h])]
        for lv in levels:
            out[lv][h] = _aci_replay(col, lv, gamma, warmup)
    return out


def _aci_replay(col: np.ndarray, level: float, gamma: float, warmup: int) -> float:
    seen = sorted(col[:warmup].tolist())
    alpha = target = 1.0 - level
    for score in col[warmup:]:
        current = min(max(1.0 - alpha, 0.5), 0.999)
        q = seen[_conformal_rank(len(seen), current) - 1]
        alpha += gamma * (target - float(score > q))
        bisect.insort(seen, float(score))
    return min(max(1.0 - alpha, 0.5), 0.999)


def log_residuals(actual: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Log residuals ``log(actual / point)`` (elementwise, broadcasting like numpy)."""
    return np.log(np.asarray(actual, dtype=float) / np.asarray(point, dtype=float))


def _conformal_rank(n: int, level: float) -> int:
    """The 1-based order statistic ``ceil((n + 1) * level)`` capped at ``n``, ignoring float noise (8.0000001)."""
    return min(math.ceil((n + 1) * level - 1e-9), n)


def conformal_quantiles(
    abs_log_residuals: np.ndarray,
    levels: tuple[float, ...] = LEVELS,
    *,
    min_residuals: int = MIN_RESIDUALS,
    adjusted: dict[float, np.ndarray] | None = None,
    signed: bool = False,
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
        adjusted: ``{level: per-horizon level actually used}`` (from :func:`aci_levels`); default the level.
        signed: take the scores as they are (CQR scores, negative inside the band), not their absolute values.

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
        col = res[:, h][np.isfinite(res[:, h])]
        col = col if signed else np.abs(col)
        if col.size < min_residuals:
            raise NotEnoughDataError(
                f"conformal calibration needs at least {min_residuals} residuals for horizon {h + 1}, got {col.size}"
            )
        col.sort()
        for lv in levels:
            used = lv if adjusted is None else float(adjusted[lv][h])
            out[lv][h] = col[_conformal_rank(col.size, used) - 1]
    return out


def cqr_scores(z: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """CQR conformity scores ``max(q_lo - z, z - q_hi)`` of each level's band, shape ``(n, len(LEVELS) * H)``.

    Args:
        z: realised normalised h-day log returns, shape ``(n, H)``.
        quantiles: the forecast :data:`QUANTILE_LEVELS` quantiles of ``z``, shape ``(n, H, 4)``.

    Returns:
        The scores of the 80% band for horizons ``1..H``, then those of the 95% band (the order of :data:`LEVELS`).
    """
    z = np.asarray(z, dtype=float)
    q = np.asarray(quantiles, dtype=float)
    blocks = [np.maximum(q[..., BAND_QUANTILES[lv][0]] - z, z - q[..., BAND_QUANTILES[lv][1]]) for lv in LEVELS]
    return np.concatenate(blocks, axis=1)


def cqr_quantiles(scores: np.ndarray, *, gamma: float = 0.0) -> dict[float, np.ndarray]:
    """Per level and horizon, the conformal quantile ``Q`` of the signed CQR scores of :func:`cqr_scores`
    (with ACI when ``gamma > 0``): the band ``[q_lo - Q, q_hi + Q]`` covers at the level."""
    res = np.asarray(scores, dtype=float)
    n_h = res.shape[1] // len(LEVELS)
    out = {}
    for i, lv in enumerate(LEVELS):
        block = res[:, i * n_h : (i + 1) * n_h]
        adjusted = aci_levels(block, (lv,), gamma=gamma) if gamma > 0 else None
        out[lv] = conformal_quantiles(block, (lv,), adjusted=adjusted, signed=True)[lv]
    return out


def _level_suffix(level: float) -> str:
    return str(round(level * 100))


def forecast_frame(
    origin: pd.Timestamp,
    last_close: float,
    points: np.ndarray,
    quantiles: dict[float, np.ndarray],
    sigma: np.ndarray | None = None,
    bands: dict[float, tuple[np.ndarray, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Build the :data:`~forecaster.models.base.FORECAST_COLUMNS` frame for horizons ``1..H``.

    Args:
        origin: the last session whose close the forecast knows.
        last_close: close on ``origin``.
        points: point forecasts for horizons ``1..H`` (price space).
        quantiles: ``{0.80: q, 0.95: q}`` from :func:`conformal_quantiles`, each of shape ``(H,)``.
        sigma: the scale of each horizon at the origin, shape ``(H,)`` (default 1: plain split-conformal).
        bands: ``{level: (lo, hi)}`` price bands made elsewhere (CQR), used instead of ``quantiles`` and ``sigma``;
            each is widened to hold the point.

    Returns:
        One row per horizon; target dates are the next ``H`` NYSE sessions after ``origin``;
        ``lo = point * exp(-q * sigma)`` and ``hi = point * exp(q * sigma)``, then made nested across horizons
        (:func:`nested_bands`): each horizon's band contains the previous horizon's, so no band narrows as the
        horizon grows. This only widens, so the conformal coverage guarantee still holds.
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
    scale = np.ones(n_h) if sigma is None else np.asarray(sigma, dtype=float).reshape(-1)
    if scale.size != n_h:
        raise ValueError(f"sigma has {scale.size} values but there are {n_h} horizons")
    for lv in LEVELS:
        if bands is not None:
            lo, hi = (np.asarray(b, dtype=float).reshape(-1) for b in bands[lv])
            lo, hi = nested_bands(np.minimum(lo, pts), np.maximum(hi, pts))
        else:
            q = np.asarray(quantiles[lv], dtype=float).reshape(-1)
            if q.size != n_h:
                raise ValueError(f"quantiles[{lv}] has {q.size} values but there are {n_h} horizons")
            q = q * scale
            lo, hi = nested_bands(pts * np.exp(-q), pts * np.exp(q))
        frame[f"lo{_level_suffix(lv)}"] = lo
        frame[f"hi{_level_suffix(lv)}"] = hi
    return frame.loc[:, list(FORECAST_COLUMNS)]


def nested_bands(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bands that never narrow with the horizon: the running minimum of ``lo`` and running maximum of ``hi``.

    Horizon ``h``'s band becomes the union of the bands of horizons ``1..h``, so it contains every shorter
    horizon's band (conformal quantiles estimated per horizon can dip: the README once showed h=5 95%
    [333.85, 569.86] inside h=4 [327.76, 580.43]). Bands that already widen are returned unchanged.

    >>> nested_bands(np.array([90.0, 80.0, 82.0]), np.array([110.0, 125.0, 120.0]))
    (array([90., 80., 80.]), array([110., 125., 125.]))
    """
    return np.minimum.accumulate(np.asarray(lo, dtype=float)), np.maximum.accumulate(np.asarray(hi, dtype=float))
