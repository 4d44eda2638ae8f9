"""Forecast accuracy metrics: plain functions of 1-D arrays, and :func:`score`, the ONE scorer every caller uses.

Every metric takes equal-length, non-empty, finite 1-D arrays and raises ``ValueError`` naming the lengths or
the bad values otherwise (scikit-learn wrappers where it has the metric, ``scipy.stats`` for the DM p-value).
:func:`score` composes them over an outcome frame in the ``forecast_outcomes`` vocabulary (``as_of,
target_date, horizon, point, lo80, hi80, lo95, hi95, naive, actual``) for the backtest summary, the report, the
live drift check, the gate and the rolling-skill figure.

Direction, the same here as in the ``forecast_outcomes`` view: a HIT when ``sign(point - naive) ==
sign(actual - naive)`` and both are non-zero. A forecast equal to the last close makes no call (a miss in
``directional_accuracy``, left out of ``call_accuracy``); so does an unchanged close count as a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import xlogy
from sklearn import metrics as skm

NAN = float("nan")
INTERVALS: dict[str, float] = {"80": 0.2, "95": 0.05}  # level -> alpha (miss rate)
QUANTILES: dict[str, float] = {"lo95": 0.025, "lo80": 0.10, "hi80": 0.90, "hi95": 0.975}  # interval bound -> tau
TERCILES: tuple[str, ...] = ("calm", "mid", "wild")
TRAFFIC: tuple[str, ...] = ("green", "yellow", "red")  # traffic80/95 values 0, 1, 2
TRAFFIC_P: tuple[float, float] = (0.05, 0.01)  # conditional-coverage p-value at or above: green; at or above: yellow
VOLATILITY_WINDOW = 20


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


# -- point forecasts ----------------------------------------------------------------------------------------


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
        return NAN
    return float(skm.r2_score(t, p))


def naive_scale(train_close: np.ndarray, *, window: int = 250) -> float:
    """MASE scale: in-sample MAE of the 1-step naive forecast over the last ``window`` returns of ``train_close``.

    ``mean(|diff(train_close[-(window + 1):])|)``: about one trading year by default, so the scale matches the
    price level being scored (TSLA's 2010 closes, near $1.50 split-adjusted, would make naive's own MASE about 5).
    Compute it on the TRAINING closes only (data dated before the first evaluated forecast); a shorter series uses
    all its returns.
    """
    (close,) = _arrays(train_close=train_close)
    if close.size < 2:
        raise ValueError(f"naive_scale needs at least 2 training closes, got {close.size}")
    if window < 1:
        raise ValueError(f"naive_scale window must be at least 1 return, got {window}")
    return float(np.mean(np.abs(np.diff(close[-(window + 1) :]))))


def mase(y_true: np.ndarray, y_pred: np.ndarray, *, scale: float) -> float:
    """Mean absolute scaled error: ``mae(y_true, y_pred) / scale`` with ``scale`` from :func:`naive_scale`."""
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    return mae(y_true, y_pred) / float(scale)


def theil_u2(y_true: np.ndarray, y_pred: np.ndarray, y_naive: np.ndarray) -> float:
    """Theil's U2: ``rmse(model) / rmse(naive)``; below 1 beats the naive forecast (NaN if the naive is exact)."""
    t, p, n = _arrays(y_true=y_true, y_pred=y_pred, y_naive=y_naive)
    denom = rmse(t, n)
    return rmse(t, p) / denom if denom > 0 else NAN


def direction_hits(y_true: np.ndarray, y_pred: np.ndarray, y_last: np.ndarray) -> np.ndarray:
    """Per case, 1 when ``sign(pred - last) == sign(true - last)`` and both are non-zero, else 0 (as the view)."""
    t, p, last = _arrays(y_true=y_true, y_pred=y_pred, y_last=y_last)
    call, move = np.sign(p - last), np.sign(t - last)
    return ((call == move) & (call != 0)).astype(int)


def directional_accuracy(y_true: np.ndarray, y_pred: np.ndarray, y_last: np.ndarray) -> float:
    """Share of ALL cases that are direction hits: no call (pred = last) and no move (true = last) are misses."""
    return float(np.mean(direction_hits(y_true, y_pred, y_last)))


def call_share(y_pred: np.ndarray, y_last: np.ndarray) -> float:
    """Share of cases where the model made a call (a forecast different from the last close)."""
    p, last = _arrays(y_pred=y_pred, y_last=y_last)
    return float(np.mean(p != last))


def call_accuracy(y_true: np.ndarray, y_pred: np.ndarray, y_last: np.ndarray) -> float:
    """Directional accuracy on the cases where the model made a call only (NaN when it never did)."""
    hits = direction_hits(y_true, y_pred, y_last)
    calls = np.asarray(y_pred, dtype=float) != np.asarray(y_last, dtype=float)
    return float(np.mean(hits[calls])) if calls.any() else NAN


def diebold_mariano(
    y_true: np.ndarray, y_pred: np.ndarray, y_naive: np.ndarray, *, horizon: int = 1
) -> tuple[float, float]:
    """Diebold-Mariano test of equal squared error against naive, with the Harvey-Leybourne-Newbold correction.

    The loss differential ``d = (y - pred)² - (y - naive)²`` is taken in time order; its long-run variance uses the
    autocovariances up to lag ``horizon - 1``. Negative statistics favour the model.

    Returns:
        ``(statistic, two-sided p-value)`` from Student's t with ``n - 1`` degrees of freedom; NaNs when ``n < 2``
        or the variance is not positive (e.g. the model IS the naive forecast).
    """
    t, p, n = _arrays(y_true=y_true, y_pred=y_pred, y_naive=y_naive)
    d = (t - p) ** 2 - (t - n) ** 2
    size, h = d.size, int(horizon)
    centred = d - d.mean()
    gammas = [float(centred[k:] @ centred[: size - k]) / size for k in range(min(h, size))]
    variance = gammas[0] + 2.0 * sum(gammas[1:])
    correction = (size + 1 - 2 * h + h * (h - 1) / size) / size
    if size < 2 or not variance > 1e-12 * max(1.0, float(np.mean(d**2))) or correction <= 0:
        return NAN, NAN
    statistic = float(d.mean() / np.sqrt(variance / size) * np.sqrt(correction))
    return statistic, float(2.0 * stats.t.sf(abs(statistic), df=size - 1))


# -- intervals and quantiles --------------------------------------------------------------------------------


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


def winkler_score(y_true: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, alpha: float) -> float:
    """Winkler interval score: mean of the width plus ``2 / alpha`` times the distance of a miss (lower is better)."""
    t, low, high = _interval(lo, hi, y_true=y_true)
    miss = np.clip(low - t, 0.0, None) + np.clip(t - high, 0.0, None)
    return float(np.mean(high - low + 2.0 / alpha * miss))


def pinball_loss(y_true: np.ndarray, y_quantile: np.ndarray, *, tau: float) -> float:
    """Pinball (quantile) loss of a forecast of the ``tau`` quantile."""
    t, q = _arrays(y_true=y_true, y_quantile=y_quantile)
    return float(skm.mean_pinball_loss(t, q, alpha=tau))


def trailing_volatility(close: pd.Series, window: int = VOLATILITY_WINDOW) -> pd.Series:
    """Mean absolute log return over the ``window`` returns up to each date (known at that date's close)."""
    return np.log(close.astype(float)).diff().abs().rolling(window).mean()


def volatility_terciles(volatility: np.ndarray) -> np.ndarray:
    """Tercile of each value (0 calm, 1 mid, 2 wild), cut at the 1/3 and 2/3 quantiles of these values."""
    (vol,) = _arrays(volatility=volatility)
    low, high = np.quantile(vol, [1 / 3, 2 / 3])
    return (vol > low).astype(int) + (vol > high).astype(int)


def coverage_by_tercile(y_true: np.ndarray, lo: np.ndarray, hi: np.ndarray, volatility: np.ndarray) -> list[float]:
    """:func:`coverage` within each tercile of ``volatility`` (calm, mid, wild); NaN for an empty tercile."""
    t, vol, low, high = _interval(lo, hi, y_true=y_true, volatility=volatility)
    groups = volatility_terciles(vol)
    return [coverage(t[groups == g], low[groups == g], high[groups == g]) if (groups == g).any() else NAN
            for g in range(len(TERCILES))]  # fmt: skip


# -- coverage backtests (as for VaR) ------------------------------------------------------------------------


def interval_misses(y_true: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """1 where the actual falls outside ``[lo, hi]``, else 0 (the "hit sequence" of a VaR backtest)."""
    t, low, high = _interval(lo, hi, y_true=y_true)
    return ((t < low) | (t > high)).astype(int)


def _bernoulli_loglik(misses: float, hits: float, p: float) -> float:
    return float(xlogy(misses, p) + xlogy(hits, 1.0 - p))


def kupiec_pof(misses: np.ndarray, *, alpha: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures test that the miss rate is ``alpha``.

    ``LR = -2 [ln L(alpha) - ln L(x / n)]`` with ``x`` misses in ``n`` Bernoulli trials, chi-square with 1 dof.

    Returns:
        ``(LR statistic, p-value)``.
    """
    (m,) = _arrays(misses=misses)
    x, n = float(m.sum()), float(m.size)
    lr = max(-2.0 * (_bernoulli_loglik(x, n - x, alpha) - _bernoulli_loglik(x, n - x, x / n)), 0.0)
    return lr, float(stats.chi2.sf(lr, df=1))


def christoffersen(misses: np.ndarray, *, alpha: float) -> tuple[float, float, float, float]:
    """Christoffersen's independence and conditional-coverage tests of a miss sequence in time order.

    From the transition counts ``n_ij`` (state ``i`` then ``j``), ``pi01 = n01 / (n00 + n01)``, ``pi11 = n11 /
    (n10 + n11)`` and ``pi = (n01 + n11) / (n - 1)``: ``LR_ind = -2 [ln L(pi) - ln L(pi01, pi11)]`` (chi-square,
    1 dof) and ``LR_cc = LR_pof + LR_ind`` (chi-square, 2 dof), with :func:`kupiec_pof` on the same sequence.

    Returns:
        ``(LR_ind, p_ind, LR_cc, p_cc)``; NaNs with fewer than 2 values.
    """
    (m,) = _arrays(misses=misses)
    if m.size < 2:
        return NAN, NAN, NAN, NAN
    prev, nxt = m[:-1], m[1:]
    n00, n01 = float(((prev == 0) & (nxt == 0)).sum()), float(((prev == 0) & (nxt == 1)).sum())
    n10, n11 = float(((prev == 1) & (nxt == 0)).sum()), float(((prev == 1) & (nxt == 1)).sum())
    pi = (n01 + n11) / (m.size - 1)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    unrestricted = _bernoulli_loglik(n01, n00, pi01) + _bernoulli_loglik(n11, n10, pi11)
    lr_ind = max(-2.0 * (_bernoulli_loglik(n01 + n11, n00 + n10, pi) - unrestricted), 0.0)
    lr_cc = kupiec_pof(m, alpha=alpha)[0] + lr_ind
    return lr_ind, float(stats.chi2.sf(lr_ind, df=1)), lr_cc, float(stats.chi2.sf(lr_cc, df=2))


def traffic_light(p_value: float) -> float:
    """0 (green) when ``p >= 0.05``, 1 (yellow) when ``p >= 0.01``, else 2 (red); NaN for a NaN p-value."""
    if not np.isfinite(p_value):
        return NAN
    return float(sum(p_value < cut for cut in TRAFFIC_P))


# -- the scorer ---------------------------------------------------------------------------------------------

Metric = Callable[[pd.DataFrame, "float | None", int], float]
REQUIRED: tuple[str, ...] = ("actual", "point", "naive")


@dataclass(frozen=True)
class _On:
    """A metric of ``fn`` over these columns, on the rows where all of them are known (NaN when none is)."""

    columns: tuple[str, ...]
    fn: Callable[..., float]

    def __call__(self, frame: pd.DataFrame, scale: float | None, horizon: int) -> float:
        if any(c not in frame.columns for c in self.columns):
            return NAN
        rows = frame.dropna(subset=list(self.columns))
        return self.fn(*(rows[c] for c in self.columns)) if len(rows) else NAN

    def of_arrays(self, values: Mapping[str, np.ndarray]) -> float:
        """The same on float arrays (one per column, all present): rows with a NaN in any column are dropped."""
        arrays = [values[c] for c in self.columns]
        known = ~np.logical_or.reduce([np.isnan(a) for a in arrays])
        return self.fn(*(a[known] for a in arrays)) if known.any() else NAN


def _on(columns: Sequence[str], fn: Callable[..., float]) -> Metric:
    return _On(tuple(columns), fn)


def _mase(frame: pd.DataFrame, scale: float | None, horizon: int) -> float:
    return NAN if scale is None else mase(frame["actual"], frame["point"], scale=scale)


def _dm(which: int) -> Metric:
    def metric(frame: pd.DataFrame, scale: float | None, horizon: int) -> float:
        return diebold_mariano(frame["actual"], frame["point"], frame["naive"], horizon=horizon)[which]

    return metric


def _pinball(*values: pd.Series) -> float:
    """Mean pinball loss over the four interval bounds, each the forecast of its quantile (:data:`QUANTILES`)."""
    y, bounds = values[0], values[1:]
    return float(np.mean([pinball_loss(y, q, tau=tau) for q, tau in zip(bounds, QUANTILES.values(), strict=True)]))


def _backtest(level: str, alpha: float, which: str) -> Metric:
    """A coverage backtest statistic on every ``horizon``-th origin (time order) from the first.

    An h-step band's misses overlap (origins less than h apart share target days), so even a calibrated band's
    miss sequence is autocorrelated up to lag h - 1; the tests assume independent Bernoulli trials, so they are
    run on the non-overlapping subsequence (n / h trials at horizon h).
    """

    def metric(frame: pd.DataFrame, scale: float | None, horizon: int) -> float:
        rows = frame.dropna(subset=["actual", f"lo{level}", f"hi{level}"]).iloc[:: max(int(horizon), 1)]
        if len(rows) == 0:
            return NAN
        m = interval_misses(rows["actual"], rows[f"lo{level}"], rows[f"hi{level}"])
        if which.startswith("pof"):
            return kupiec_pof(m, alpha=alpha)[which == "pof_p"]
        ind_lr, ind_p, cc_lr, cc_p = christoffersen(m, alpha=alpha)
        return {"ind_lr": ind_lr, "ind_p": ind_p, "cc_lr": cc_lr, "cc_p": cc_p, "traffic": traffic_light(cc_p)}[which]

    return metric


BACKTESTS: tuple[str, ...] = ("pof_lr", "pof_p", "ind_lr", "ind_p", "cc_lr", "cc_p", "traffic")


def _interval_metrics(level: str, alpha: float) -> dict[str, Metric]:
    bounds = ("actual", f"lo{level}", f"hi{level}")
    out = {
        f"coverage{level}": _on(bounds, coverage),
        f"width{level}": _on(bounds[1:], interval_width),
        f"winkler{level}": _on(bounds, lambda y, lo, hi: winkler_score(y, lo, hi, alpha=alpha)),
    }
    for i, name in enumerate(TERCILES):
        out[f"coverage{level}_{name}"] = _on((*bounds, "volatility"), lambda *v, i=i: coverage_by_tercile(*v)[i])
    return out | {f"{name}{level}": _backtest(level, alpha, name) for name in BACKTESTS}


METRICS: dict[str, Metric] = {
    "rmse": _on(("actual", "point"), rmse),
    "mae": _on(("actual", "point"), mae),
    "mape": _on(("actual", "point"), mape),
    "r2": _on(("actual", "point"), r2),
    "mase": _mase,
    "u2": _on(REQUIRED, theil_u2),
    "naive_rmse": _on(("actual", "naive"), rmse),
    "directional_accuracy": _on(REQUIRED, directional_accuracy),
    "call_accuracy": _on(REQUIRED, call_accuracy),
    "call_share": _on(("point", "naive"), call_share),
    **_interval_metrics("80", INTERVALS["80"]),
    **_interval_metrics("95", INTERVALS["95"]),
    "pinball": _on(("actual", *QUANTILES), _pinball),
    "dm_stat": _dm(0),
    "dm_pvalue": _dm(1),
}
DEFAULT: tuple[str, ...] = tuple(METRICS)
LIVE: tuple[str, ...] = ("rmse", "naive_rmse", "u2", "mae", "directional_accuracy", "call_accuracy", "call_share",
                         "coverage80", "coverage95")  # fmt: skip


def _check_scorable(frame: pd.DataFrame, metrics: Sequence[str]) -> None:
    """What :func:`score` refuses: a missing required column, an unknown metric, several horizons."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"score needs column(s) {missing}; frame has {list(frame.columns)}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    if "horizon" in frame.columns and frame["horizon"].nunique() > 1:
        raise ValueError(f"score takes one horizon, frame has {sorted(frame['horizon'].unique().tolist())}")


def score(frame: pd.DataFrame, *, scale: float | None = None, metrics: Sequence[str] = DEFAULT) -> dict[str, float]:
    """Score ONE horizon of an outcome frame: each named metric of :data:`METRICS`, plus ``n``.

    Args:
        frame: ``actual, point, naive`` and, optionally, ``as_of`` (time order, for the DM test), ``horizon``,
            ``lo80, hi80, lo95, hi95`` and ``volatility`` (:func:`with_volatility`, for the tercile coverages).
            Rows whose ``actual`` is missing (not yet matured) are dropped; ``n`` counts the rows scored.
        scale: MASE scale from :func:`naive_scale` on the training closes (MASE is NaN without it).
        metrics: names from :data:`METRICS`; :data:`LIVE` is what the live drift check stores.

    Returns:
        ``{name: value}`` in the order asked, then ``n``; NaN where a metric cannot be computed (no rows, no
        interval, no volatility, naive exact for U2).
    """
    _check_scorable(frame, metrics)
    rows = frame.loc[frame["actual"].notna()]
    if "as_of" in rows.columns:
        rows = rows.sort_values("as_of", kind="stable")
    horizon = int(rows["horizon"].iloc[0]) if "horizon" in rows.columns and len(rows) else 1
    values = {m: METRICS[m](rows, scale, horizon) if len(rows) else NAN for m in metrics}
    return values | {"n": len(rows)}


def score_by_horizon(
    frame: pd.DataFrame, *, scale: float | None = None, metrics: Sequence[str] = DEFAULT
) -> dict[int, dict[str, float]]:
    """:func:`score` of each horizon of ``frame``, by horizon."""
    return {int(h): score(group, scale=scale, metrics=metrics) for h, group in frame.groupby("horizon")}


def rolling_score(
    frame: pd.DataFrame, window: int, metrics: Sequence[str] = ("rmse", "naive_rmse", "u2")
) -> pd.DataFrame:
    """:func:`score` of every run of ``window`` consecutive matured rows, in the frame's order (one per last row).

    Metrics of columns alone (RMSE, U2, coverage, ...) on rows already in ``as_of`` order are computed on NumPy
    slices, with the same functions on the same rows as :func:`score` (about 2.5x faster for the report's figure).
    """
    rows = frame.loc[frame["actual"].notna()]
    ends = range(window, len(rows) + 1)
    if ends:
        _check_scorable(rows, metrics)  # what score would refuse in every window, refused once
    columnar = [m for m in (METRICS.get(name) for name in metrics) if isinstance(m, _On)]
    needed = {c for m in columnar for c in m.columns}
    in_order = "as_of" not in rows.columns or rows["as_of"].is_monotonic_increasing  # score's sort changes nothing
    numeric = needed <= set(rows.columns) and all(pd.api.types.is_numeric_dtype(rows[c]) for c in needed)
    if len(columnar) == len(metrics) and in_order and numeric:
        arrays = {c: rows[c].to_numpy(dtype=float, na_value=np.nan) for c in needed}
        scores = [{name: m.of_arrays({c: a[i - window : i] for c, a in arrays.items()})
                   for name, m in zip(metrics, columnar, strict=True)} | {"n": window} for i in ends]  # fmt: skip
    else:
        scores = [score(rows.iloc[i - window : i], metrics=metrics) for i in ends]
    return pd.DataFrame(scores, index=rows.index[window - 1 :], columns=[*metrics, "n"])


def with_volatility(frame: pd.DataFrame, close: pd.Series, window: int = VOLATILITY_WINDOW) -> pd.DataFrame:
    """``frame`` plus ``volatility``: :func:`trailing_volatility` of ``close`` at each row's ``as_of``."""
    vol = trailing_volatility(close, window)
    vol.index = pd.DatetimeIndex(vol.index)
    return frame.assign(volatility=vol.reindex(pd.DatetimeIndex(frame["as_of"])).to_numpy())
