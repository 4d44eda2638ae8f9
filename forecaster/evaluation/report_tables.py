"""The numbers of a report, from frames: forecast rows, model-vs-naive skill windows, coverage, verdict, warnings.

Pure functions (no database, no Prefect). ``outcomes`` frames have one row per forecast origin and horizon with
``as_of, target_date, horizon, point, naive, actual, lo80, hi80, lo95, hi95`` (the ``forecast_outcomes`` view);
rows whose ``actual`` is missing have not matured and are ignored. Values that cannot be computed are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecaster.evaluation import calibration, metrics

SKILL_WINDOWS: tuple[int, ...] = (20, 60)
LEVELS: tuple[str, ...] = ("80", "95")
NAN = float("nan")
MODEL_SCORES = (
    "rmse", "mae", "u2", "directional_accuracy", "call_accuracy", "call_share", "coverage80", "coverage95",
    "winkler80", "winkler95", "pinball", "coverage80_calm", "coverage80_mid", "coverage80_wild", "dm_stat", "dm_pvalue",
)  # fmt: skip
NAIVE_SCORES = ("rmse", "mae", "u2")  # the naive forecast makes no direction call and has no interval


def forecast_rows(forecast: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per horizon: target date, point, intervals, naive and the change from the last close (%).

    Args:
        forecast: one origin's forecast (:data:`forecaster.models.base.FORECAST_COLUMNS`).
    """
    rows = []
    for r in forecast.sort_values("horizon").itertuples(index=False):
        last = float(r.naive)
        rows.append(
            {
                "horizon": int(r.horizon),
                "target_date": pd.Timestamp(r.target_date).strftime("%Y-%m-%d"),
                "point": float(r.point),
                "lo80": float(r.lo80),
                "hi80": float(r.hi80),
                "lo95": float(r.lo95),
                "hi95": float(r.hi95),
                "naive": last,
                "change_pct": 100.0 * (float(r.point) / last - 1.0) if last else NAN,
            }
        )
    return rows


def matured(outcomes: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
    """Rows whose close is known (optionally of one horizon), one per (origin, horizon), oldest target first."""
    if outcomes is None or outcomes.empty:
        return pd.DataFrame(columns=["as_of", "target_date", "horizon", "point", "naive", "actual"])
    frame = outcomes.loc[outcomes["actual"].notna()]
    if horizon is not None:
        frame = frame.loc[frame["horizon"] == horizon]
    frame = frame.sort_values(["target_date", "horizon"]).drop_duplicates(["as_of", "horizon"], keep="last")
    return frame.reset_index(drop=True)


def skill_window(
    outcomes: pd.DataFrame, sessions: int, horizon: int = 1, prices: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Model and naive scores (:func:`forecaster.evaluation.metrics.score`) over the last ``sessions`` matured
    forecasts.

    Args:
        prices: stored bars; with them, the 80% coverage is also split by volatility tercile (the trailing
            20-session mean |log return| at each forecast's as-of day, cut at this window's own tercile points).

    Returns:
        ``sessions``, ``horizon``, ``n`` (rows scored, fewer when less has matured), ``first_target``/
        ``last_target``, ``tercile_n`` (forecasts in the calm, mid and wild terciles; ``None`` without prices),
        and ``model`` (:data:`MODEL_SCORES`) and ``naive`` (the same keys; only
        :data:`NAIVE_SCORES` are finite, U2 being 1 by definition) dicts, in USD and shares.
    """
    tail = matured(outcomes, horizon).tail(sessions)
    empty = {k: NAN for k in MODEL_SCORES}
    out: dict[str, Any] = {"sessions": sessions, "horizon": horizon, "n": len(tail), "tercile_n": None}
    if tail.empty:
        return out | {"first_target": None, "last_target": None, "model": empty, "naive": dict(empty)}
    if prices is not None and not prices.empty:
        tail = metrics.with_volatility(tail, prices["close"])
    model = metrics.score(tail, metrics=MODEL_SCORES)
    out["tercile_n"] = _tercile_counts(tail)
    naive = metrics.score(tail.assign(point=tail["naive"]), metrics=NAIVE_SCORES)
    dates = pd.to_datetime(tail["target_date"])
    span = {"first_target": dates.min().strftime("%Y-%m-%d"), "last_target": dates.max().strftime("%Y-%m-%d")}
    return out | span | {"model": {k: model[k] for k in MODEL_SCORES}, "naive": empty | _drop_n(naive)}


def _tercile_counts(tail: pd.DataFrame) -> list[int] | None:
    """Forecasts in each volatility tercile (calm, mid, wild) of the window, as the tercile coverages count them."""
    if "volatility" not in tail.columns:
        return None
    vol = tail["volatility"].dropna().to_numpy(float)
    return np.bincount(metrics.volatility_terciles(vol), minlength=3).tolist() if vol.size else [0, 0, 0]


def _drop_n(scores: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in scores.items() if k != "n"}


def skill_table(
    outcomes: pd.DataFrame, windows: Sequence[int] = SKILL_WINDOWS, horizon: int = 1,
    prices: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """:func:`skill_window` for each window length (default the last 20 and 60 sessions)."""
    return [skill_window(outcomes, w, horizon, prices) for w in windows]


def coverage_by_horizon(outcomes: pd.DataFrame) -> list[dict[str, Any]]:
    """Per horizon: matured forecasts ``n``, closes inside the 80% and 95% intervals (``hits80``, ``coverage80``,
    ...), the two-sided binomial p-value of each coverage against its level (``pvalue80``, ``pvalue95``), the
    coverage backtests risk teams run for VaR (Kupiec ``pof_p80``, Christoffersen conditional coverage ``cc_p80``
    and its traffic light ``light80``: green, yellow or red; the same for 95) and the Winkler interval scores (USD;
    width plus the penalised miss distance, lower is better)."""
    keys = ("coverage80", "coverage95", "winkler80", "winkler95", "pof_p80", "cc_p80", "traffic80", "pof_p95", "cc_p95",
            "traffic95")  # fmt: skip
    scores = metrics.score_by_horizon(matured(outcomes), metrics=keys)
    rows = []
    for h, s in scores.items():
        row: dict[str, Any] = {"horizon": h, "n": s["n"]} | {k: s[k] for k in keys}
        for level in LEVELS:
            hits = round(s[f"coverage{level}"] * s["n"]) if s["n"] else 0
            row[f"hits{level}"] = hits
            row[f"pvalue{level}"] = calibration.coverage_pvalue(hits, int(s["n"]), int(level) / 100)
            light = s[f"traffic{level}"]
            row[f"light{level}"] = metrics.TRAFFIC[int(light)] if light == light else None
        rows.append(row)
    return rows


def coverage_warnings(rows: Sequence[dict[str, Any]], *, alpha: float = 0.05) -> list[str]:
    """A warning for each horizon and level whose coverage a binomial test rejects (:func:`coverage_by_horizon`).

    The test of each of the ``k`` coverages (horizons times levels) runs at ``alpha / k`` (Bonferroni), so the
    report raises a false alarm on honest intervals at most ``alpha`` of the days.
    """
    tests = [(r, level) for r in rows for level in LEVELS if r["n"]]
    out = []
    for row, level in tests:
        p = row[f"pvalue{level}"]
        if np.isfinite(p) and p < alpha / len(tests):
            share = row[f"coverage{level}"]
            how = "too narrow" if share < int(level) / 100 else "too wide"
            out.append(
                f"h={row['horizon']} {level}% intervals {how}: they covered {_pct(share)} "
                f"({row[f'hits{level}']} of {row['n']} forecasts), binomial p = {p:.2g} against {level}%"
            )
    return out


def verdict(window: dict[str, Any]) -> str:
    """One sentence: is the model beating "tomorrow = today" over this window?"""
    n, u2 = window["n"], window["model"]["u2"]
    if n == 0:
        return "No forecast has matured yet, so there is no track record to compare with the naive forecast."
    if not math.isfinite(u2):
        return f"Over the last {n} sessions the naive forecast was exact, so the comparison is undefined."
    rmse, naive = window["model"]["rmse"], window["naive"]["rmse"]
    head = f"Over the last {n} sessions the model's next-day error (RMSE ${rmse:,.2f}) was "
    versus = f"naive's (${naive:,.2f}, U2 {u2:.3f})"
    if u2 < 0.995:
        return head + f"{100 * (1 - u2):.1f}% smaller than {versus}: it beats 'tomorrow = today'."
    if u2 > 1.005:
        return head + f"{100 * (u2 - 1):.1f}% larger than {versus}: it does NOT beat 'tomorrow = today'."
    return head + f"the same as {versus}: no better than 'tomorrow = today'."


def feed_warnings(prices: pd.DataFrame, as_of: pd.Timestamp, *, repeat: int = 3) -> list[str]:
    """Signs of a stale price feed: no bar on ``as_of``, or the last ``repeat`` bars identical."""
    if prices is None or prices.empty:
        return ["no stored prices: the price feed has delivered nothing"]
    day = pd.Timestamp(as_of).normalize()
    upto = prices.loc[prices.index <= day]
    if upto.empty:
        return [f"no stored price on or before {day:%Y-%m-%d}"]
    out = []
    newest = upto.index[-1]
    if newest < day:
        out.append(f"stale price feed: the newest stored bar is {newest:%Y-%m-%d}, before the as-of day {day:%Y-%m-%d}")
    last = upto.tail(repeat)[["open", "high", "low", "close", "volume"]]
    if len(last) == repeat and (last.nunique() == 1).all():
        out.append(
            f"stale price feed? the last {repeat} bars are identical (close ${last['close'].iloc[-1]:,.2f}, "
            f"volume {last['volume'].iloc[-1]:,.0f})"
        )
    return out


def skill_warnings(table: Sequence[dict[str, Any]], *, drift_u2: float, min_n: int = 10) -> list[str]:
    """Drift: the shortest window's U2 above the full-retrain threshold, as the retrain policy reads it.

    Interval coverage is judged per horizon by :func:`coverage_warnings` (a binomial test).
    """
    if not table:
        return []
    short = table[0]
    u2 = short["model"]["u2"]
    if short["n"] >= min_n and math.isfinite(u2) and u2 > drift_u2:
        return [
            f"drift: over the last {short['n']} sessions the model's RMSE is {u2:.2f}x naive's "
            f"(full-retrain threshold {drift_u2:.2f})"
        ]
    return []


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%" if np.isfinite(value) else "n/a"
