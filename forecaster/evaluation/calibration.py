"""Is an interval honest? Binomial tests and bands for coverage, and the PIT of quantile forecasts (scipy.stats).

A forecast's interval ``[lo, hi]`` at level ``p`` covers its close with probability ``p`` if it is calibrated, so
the number of hits in ``n`` forecasts is Binomial(``n``, ``p``). Forecasts of overlapping horizons (h > 1) are
positively correlated, which makes these tests somewhat too quick to reject: read them as alarms, not verdicts.

The PIT (probability integral transform) of a close is where it falls in its predictive distribution. Our forecasts
carry five quantiles: ``lo95`` (2.5%), ``lo80`` (10%), ``point`` (the median: the bands are built symmetrically
around it in log space), ``hi80`` (90%) and ``hi95`` (97.5%), so the PIT is known up to the bin of
:data:`PIT_EDGES` it falls in; a calibrated forecast puts a share ``width`` of the closes in each bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

NAN = float("nan")
PIT_EDGES: tuple[float, ...] = (0.0, 0.025, 0.10, 0.50, 0.90, 0.975, 1.0)
PIT_BOUNDS: tuple[str, ...] = ("lo95", "lo80", "point", "hi80", "hi95")  # the quantile at each inner edge


def coverage_pvalue(hits: int, n: int, level: float) -> float:
    """Two-sided exact binomial test of ``hits`` closes inside ``n`` intervals against the nominal ``level``.

    >>> round(coverage_pvalue(4, 12, 0.80), 4)  # 33% coverage of an 80% interval on 12 forecasts
    0.0006
    """
    if n == 0:
        return NAN
    return float(stats.binomtest(int(hits), int(n), float(level)).pvalue)


def coverage_band(n: int | np.ndarray, level: float, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The central ``confidence`` range of the coverage a calibrated ``level`` interval shows on ``n`` forecasts.

    ``binom.ppf`` of ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``, divided by ``n``: observed coverage
    outside it is unlikely (less than ``1 - confidence``) if the intervals are honest.
    """
    size = np.asarray(n, dtype=float)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        low = stats.binom.ppf(tail, size, level) / size
        high = stats.binom.ppf(1.0 - tail, size, level) / size
    return low, high


def pit_bins(outcomes: pd.DataFrame) -> np.ndarray:
    """The PIT bin (0..5, the intervals between :data:`PIT_EDGES`) of each matured forecast's close.

    A close on a lower bound counts inside the interval (as :func:`forecaster.evaluation.metrics.coverage` does),
    as does a close on an upper bound; a close equal to the point falls in the upper half.
    """
    rows = outcomes.loc[outcomes["actual"].notna()]
    y = rows["actual"].to_numpy(float)
    lower = sum((y >= rows[c].to_numpy(float)).astype(int) for c in PIT_BOUNDS[:3])
    upper = sum((y > rows[c].to_numpy(float)).astype(int) for c in PIT_BOUNDS[3:])
    return np.asarray(lower + upper, dtype=int)


def pit_histogram(outcomes: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Counts per PIT bin with the density a calibrated forecast would show and its binomial band.

    Returns:
        One row per bin: ``left``, ``right``, ``width`` (its probability), ``count``, ``density`` (``count / (n *
        width)``, 1 when calibrated) and ``band_lo``/``band_hi``, the central ``confidence`` range of the density
        under calibration (Binomial(``n``, ``width``) counts).
    """
    edges = np.asarray(PIT_EDGES)
    width = np.diff(edges)
    bins = pit_bins(outcomes)
    n = bins.size
    counts = np.bincount(bins, minlength=width.size)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = n * width
        return pd.DataFrame(
            {
                "left": edges[:-1],
                "right": edges[1:],
                "width": width,
                "count": counts,
                "density": counts / scale,
                "band_lo": stats.binom.ppf(tail, n, width) / scale,
                "band_hi": stats.binom.ppf(1.0 - tail, n, width) / scale,
            }
        )
