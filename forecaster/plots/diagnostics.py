"""Figures a quant asks for: the Diebold-Mariano view, interval width against the move, PIT, calibration bands.

Same contract as :mod:`forecaster.plots.figures`: ``plot_x(..., *, ax=None) -> Figure``, never shown or closed.
``outcomes`` frames hold matured forecasts (``as_of, target_date, horizon, point, naive, actual, lo80, hi80, lo95,
hi95``) of one model or, with a ``model`` column, of several scored on the same origins (a backtest). Only
matured rows count; every statistic comes from :mod:`forecaster.evaluation` (the one scorer, the binomial bands).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from forecaster.evaluation import calibration, metrics
from forecaster.plots.style import (
    ACTUAL,
    COVER80,
    COVER95,
    EMPTY_TEXT,
    MISS,
    empty_message,
    figure_of,
    legend_below,
    model_color,
    new_axes,
    positions,
    require,
    session_axis,
    styled,
)

REQUIRED: tuple[str, ...] = ("as_of", "target_date", "horizon", "point", "naive", "actual", "lo80", "hi80", "lo95",
                             "hi95")  # fmt: skip
NAIVE_NAME = "naive"
U2_CAP = 2.0  # rolling U2 axes stop here, so that a poor baseline does not flatten the contenders


def per_model(outcomes: pd.DataFrame, horizon: int | None = None) -> dict[str, pd.DataFrame]:
    """Matured rows of each model (``Model`` without a ``model`` column), one per origin, oldest target first."""
    if outcomes is None or len(outcomes) == 0:
        return {}
    require(outcomes, REQUIRED, "outcomes")
    frame = outcomes.loc[outcomes["actual"].notna()].copy()
    if horizon is not None:
        frame = frame.loc[frame["horizon"] == horizon]
    for column in ("as_of", "target_date"):
        dates = pd.to_datetime(frame[column])
        frame[column] = dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    names = frame["model"].astype(str) if "model" in frame.columns else pd.Series("Model", index=frame.index)
    out = {}
    for name in dict.fromkeys(names):
        rows = frame.loc[names == name].drop_duplicates(["as_of", "horizon"], keep="last")
        out[name] = rows.sort_values(["target_date", "horizon"]).reset_index(drop=True)
    return {name: rows for name, rows in out.items() if len(rows)}


def _target_axis(groups: dict[str, pd.DataFrame]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(sorted(set().union(*(set(g["target_date"]) for g in groups.values()))))


@styled
def plot_loss_differential(outcomes: pd.DataFrame, *, horizon: int = 1, ax: Axes | None = None) -> Figure:
    """Cumulative ``(actual - point)² - (actual - naive)²`` of each model over time: the Diebold-Mariano view.

    A line that drifts down is a model whose squared errors are smaller than naive's; the legend gives the DM
    (HLN) statistic and p-value of the same rows (:func:`forecaster.evaluation.metrics.score`).
    """
    ax = new_axes(ax)
    groups = {k: g for k, g in per_model(outcomes, horizon).items() if k != NAIVE_NAME}
    ax.set_title(f"Cumulative squared-error difference vs naive, h={horizon} (below 0: model ahead)")
    ax.set_xlabel("Target session")
    ax.set_ylabel("Σ (model error² − naive error²), USD²")
    if not groups:
        empty_message(ax)
        return figure_of(ax)
    axis = _target_axis(groups)
    for i, (name, g) in enumerate(groups.items()):
        d = (g["actual"] - g["point"]) ** 2 - (g["actual"] - g["naive"]) ** 2
        dm = metrics.score(g, metrics=("dm_stat", "dm_pvalue"))
        label = f"{name}: identical to naive" if not np.isfinite(dm["dm_stat"]) else (
            f"{name}: DM {dm['dm_stat']:+.2f}, p {dm['dm_pvalue']:.2g}")  # fmt: skip
        ax.plot(positions(axis, g["target_date"]), d.cumsum().to_numpy(float), color=model_color(name, i), label=label)
    ax.axhline(0.0, color=ACTUAL, linewidth=0.8)
    session_axis(ax, axis)
    legend_below(ax)
    return figure_of(ax)


@styled
def plot_interval_width(outcomes: pd.DataFrame, *, horizon: int = 1, ax: Axes | None = None) -> Figure:
    """Half-width of each model's 80% interval (and the 95% of a single model) against the realised |return|.

    Both in percent of the price (log scale): ``log(hi / lo) / 2`` and ``|log(actual / last close)|``; a dot above
    the line is a move the interval did not cover (marked red for the first model).
    """
    ax = new_axes(ax)
    groups = per_model(outcomes, horizon)
    ax.set_title(f"Interval half-width vs realised |return|, h={horizon}")
    ax.set_xlabel("Target session")
    ax.set_ylabel("% of price (log return)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    if not groups:
        empty_message(ax)
        return figure_of(ax)
    axis = _target_axis(groups)
    first = next(iter(groups.values()))
    x = positions(axis, first["target_date"])
    move = np.abs(np.log(first["actual"] / first["naive"])).to_numpy(float)
    miss = ~first["actual"].between(first["lo80"], first["hi80"]).to_numpy()
    ax.scatter(x[~miss], move[~miss], s=10, color="0.45", label="|return| inside the 80% interval", zorder=3)
    ax.scatter(x[miss], move[miss], s=14, color=MISS, label=f"|return| outside ({int(miss.sum())} of {miss.size})",
               zorder=3)  # fmt: skip
    for i, (name, g) in enumerate(groups.items()):
        xs = positions(axis, g["target_date"])
        ax.plot(xs, np.log(g["hi80"] / g["lo80"]).to_numpy(float) / 2, color=model_color(name, i), label=f"{name} 80%")
        if len(groups) == 1:
            ax.plot(xs, np.log(g["hi95"] / g["lo95"]).to_numpy(float) / 2, color=model_color(name, i),
                    linestyle="--", linewidth=1.1, label=f"{name} 95%")  # fmt: skip
    ax.set_ylim(bottom=0)
    session_axis(ax, axis)
    legend_below(ax)
    return figure_of(ax)


@styled
def plot_pit_histogram(outcomes: pd.DataFrame, *, horizon: int = 1, ax: Axes | None = None) -> Figure:
    """Where the closes fell in their predictive distributions (PIT), with the 95% binomial band of a calibrated
    forecast around density 1 (:func:`forecaster.evaluation.calibration.pit_histogram`)."""
    ax = new_axes(ax)
    groups = per_model(outcomes, horizon)
    if len(groups) > 1:
        raise ValueError(f"outcomes hold {len(groups)} models {sorted(groups)}; draw one PIT histogram per model")
    name, rows = next(iter(groups.items())) if groups else ("Model", pd.DataFrame())
    ax.set_title(f"PIT histogram of {name}, h={horizon}" + (f" (n = {len(rows)})" if len(rows) else ""))
    ax.set_xlabel("PIT bin: between which forecast quantiles (%) the close fell")
    ax.set_ylabel("Density (1 = calibrated)")
    if rows.empty:
        empty_message(ax)
        return figure_of(ax)
    hist = calibration.pit_histogram(rows)
    x = np.arange(len(hist))
    for i, r in enumerate(hist.itertuples()):
        ax.fill_between([i - 0.45, i + 0.45], r.band_lo, r.band_hi, color="0.35", alpha=0.2, linewidth=0, zorder=1)
    ax.bar(x, hist["density"], width=0.5, color=model_color(name), alpha=0.85, zorder=2)
    ax.axhline(1.0, color=ACTUAL, linestyle="--", linewidth=1.0)
    ax.set_xticks(x, [_pit_label(r.left, r.right) for r in hist.itertuples()])
    ax.set_ylim(0, max(2.0, 1.15 * float(np.nanmax(np.r_[hist["density"], hist["band_hi"]]))))
    ax.text(0.99, 0.97, "dashed: calibrated; grey: 95% binomial band", transform=ax.transAxes, ha="right",
            va="top", fontsize=8, color="0.35")  # fmt: skip
    return figure_of(ax)


def _pit_label(left: float, right: float) -> str:
    """``<2.5``, ``10–50``, ``>97.5``: a PIT bin by its quantile levels in percent."""

    def pct(v: float) -> str:
        return f"{100 * v:g}"

    if left == 0:
        return f"<{pct(right)}"
    return f">{pct(left)}" if right == 1 else f"{pct(left)}–{pct(right)}"


@styled
def plot_coverage_by_model(outcomes: pd.DataFrame, *, level: int = 80, ax: Axes | None = None) -> Figure:
    """Coverage of each model's ``level``% interval by horizon, inside the 95% binomial band of honest intervals."""
    ax = new_axes(ax)
    groups = per_model(outcomes)
    ax.set_title(f"{level}% interval coverage by horizon")
    ax.set_xlabel("Horizon (sessions ahead)")
    ax.set_ylabel("Empirical coverage")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if not groups:
        empty_message(ax)
        return figure_of(ax)
    lo, hi = f"lo{level}", f"hi{level}"
    n_by_h = pd.Series(dtype=float)
    for i, (name, g) in enumerate(groups.items()):
        cover = g.assign(inside=g["actual"].between(g[lo], g[hi])).groupby("horizon")["inside"].agg(["mean", "size"])
        ax.plot(cover.index, cover["mean"], color=model_color(name, i), marker="o", label=name, clip_on=False)
        n_by_h = cover["size"]
    binomial_band(ax, n_by_h, level / 100, COVER80 if level == 80 else COVER95)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(min(0.5, ax.get_ylim()[0]), 1.0)
    legend_below(ax)
    return figure_of(ax)


def binomial_band(ax: Axes, n_by_horizon: pd.Series, level: float, color: str) -> None:
    """The nominal level and its 95% binomial band for the forecasts counted at each horizon."""
    horizons = n_by_horizon.index.to_numpy(float)
    low, high = calibration.coverage_band(n_by_horizon.to_numpy(), level)
    x = horizons if horizons.size > 1 else np.r_[horizons - 0.3, horizons + 0.3]
    low, high = (low, high) if horizons.size > 1 else (np.repeat(low, 2), np.repeat(high, 2))
    pct = round(level * 100)
    ax.fill_between(x, low, high, color=color, alpha=0.12, linewidth=0, label=f"95% binomial band around {pct}%")
    ax.axhline(level, color=color, linestyle="--", linewidth=1.0, label=f"nominal {pct}%")


@styled
def plot_rolling_u2(outcomes: pd.DataFrame, *, window: int = 20, horizon: int = 1, ax: Axes | None = None) -> Figure:
    """Rolling ``window``-session U2 (RMSE / naive RMSE) of every model but naive; below 1 beats naive."""
    ax = new_axes(ax)
    groups = {k: g for k, g in per_model(outcomes, horizon).items() if k != NAIVE_NAME}
    ax.set_title(f"Rolling {window}-session U2 against naive, h={horizon} (below 1: beats naive)")
    ax.set_xlabel("Target session")
    ax.set_ylabel("U2 = RMSE / naive RMSE")
    longest = max((len(g) for g in groups.values()), default=0)
    if longest < window:
        empty_message(ax, EMPTY_TEXT if not longest else f"{longest} matured forecasts; the window needs {window}")
        return figure_of(ax)
    axis = _target_axis(groups)
    for i, (name, g) in enumerate(groups.items()):
        if len(g) >= window:
            roll = metrics.rolling_score(g, window, ("u2",))
            x = positions(axis, g["target_date"].iloc[window - 1 :])
            ax.plot(x, roll["u2"].to_numpy(float), color=model_color(name, i), label=name)
    ax.axhline(1.0, color=ACTUAL, linestyle=":", linewidth=1.0, label="naive (U2 = 1)")
    top = max((float(np.nanmax(line.get_ydata())) for line in ax.get_lines()[:-1]), default=1.0)
    if top > U2_CAP:
        ax.set_ylim(top=U2_CAP)
        ax.text(0.99, 0.97, f"clipped at U2 = {U2_CAP:g} (max {top:.2f})", transform=ax.transAxes, ha="right",
                va="top", fontsize=8, color="0.35")  # fmt: skip
    session_axis(ax, axis)
    legend_below(ax)
    return figure_of(ax)
