"""Report figures: functions ``plot_x(..., *, ax=None) -> Figure`` that never show or close anything.

Each function draws into ``ax`` when one is given (and returns its figure) or builds a fresh pyplot-free
:class:`~matplotlib.figure.Figure` of email width; the caller saves it (:func:`save_figure`). Dates run on a
trading-session axis: data are drawn at integer session positions whose ticks are labelled with the real dates,
so weekends and holidays leave no gaps. Empty input draws the titled, labelled axes with a centred note.

Frames: ``prices`` (``DatetimeIndex`` ``date``, column ``close``), one forecast (:data:`FORECAST_COLUMNS`), and
outcomes (:data:`OUTCOME_COLUMNS`, one row per origin and horizon; ``naive`` is the close at ``as_of``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from forecaster.evaluation import metrics
from forecaster.models.base import FORECAST_COLUMNS
from forecaster.plots.diagnostics import (
    binomial_band,
    plot_coverage_by_model,
    plot_interval_width,
    plot_loss_differential,
    plot_pit_histogram,
    plot_rolling_u2,
)
from forecaster.plots.style import (
    ACTUAL,
    COVER80,
    COVER95,
    DATE_FORMAT,
    DPI,
    EMPTY_TEXT,
    MODEL,
    NAIVE,
    as_dates,
    empty_message,
    figure_of,
    interval_bands,
    legend_below,
    new_axes,
    png_bytes,
    positions,
    require,
    save_figure,
    session_axis,
    styled,
    usd_axis,
)

__all__ = [
    "OUTCOME_COLUMNS",
    "backtest_figures",
    "plot_actual_vs_predicted",
    "plot_calibration",
    "plot_coverage_by_model",
    "plot_forecast_fan",
    "plot_forecast_zoom",
    "plot_interval_width",
    "plot_loss_differential",
    "plot_pit_histogram",
    "plot_residuals",
    "plot_rolling_skill",
    "plot_rolling_u2",
    "plot_track_record",
    "plot_training",
    "png_bytes",
    "save_figure",
]

INTERVAL_COLUMNS: tuple[str, ...] = ("lo80", "hi80", "lo95", "hi95")
LOG_SPAN = 10.0  # loss curves use a log axis when they span at least this factor
OUTCOME_COLUMNS: tuple[str, ...] = ("as_of", "target_date", "horizon", "point", "naive", "actual", *INTERVAL_COLUMNS)


# ------------------------------------------------------------------------------------------------ frames


def _closes(prices: pd.DataFrame) -> pd.Series:
    """The ``close`` column indexed by session date (an empty series for empty input)."""
    if prices is None or len(prices) == 0:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([]))
    require(prices, ["close"], "prices")
    frame = prices.set_index("date") if "date" in prices.columns else prices
    index = pd.DatetimeIndex(frame.index).tz_localize(None)
    return pd.Series(frame["close"].to_numpy(float), index=index).sort_index()


def _forecast(forecast: pd.DataFrame) -> pd.DataFrame:
    """One origin's forecast sorted by horizon; raises when it mixes origins or lacks an interval."""
    if forecast is None or len(forecast) == 0:
        return pd.DataFrame(columns=list(FORECAST_COLUMNS))
    require(forecast, FORECAST_COLUMNS, "forecast")
    frame = forecast.sort_values("horizon").reset_index(drop=True)
    frame["as_of"] = as_dates(frame["as_of"])
    frame["target_date"] = as_dates(frame["target_date"])
    if frame["as_of"].nunique() > 1:
        raise ValueError(f"forecast mixes {frame['as_of'].nunique()} origins; plot one origin at a time")
    bad = frame.loc[frame[list(INTERVAL_COLUMNS)].isna().any(axis=1), "horizon"].tolist()
    if bad:
        raise ValueError(f"forecast has no interval at horizon(s) {bad}; a forecast is never drawn without one")
    return frame


def _matured(outcomes: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
    """Realised outcome rows (``actual`` known) of one model, optionally one horizon, sorted by target date."""
    if outcomes is None or len(outcomes) == 0:
        return pd.DataFrame(columns=list(OUTCOME_COLUMNS))
    require(outcomes, OUTCOME_COLUMNS, "outcomes")
    if "model" in outcomes.columns and outcomes["model"].nunique() > 1:
        models = sorted(map(str, outcomes["model"].unique()))
        raise ValueError(f"outcomes hold {len(models)} models {models}; filter to one model before plotting")
    frame = outcomes.loc[outcomes["actual"].notna()].copy()
    if horizon is not None:
        frame = frame.loc[frame["horizon"] == horizon]
    frame["as_of"] = as_dates(frame["as_of"])
    frame["target_date"] = as_dates(frame["target_date"])
    frame = frame.drop_duplicates(["as_of", "horizon"], keep="last")
    return frame.sort_values(["target_date", "horizon"]).reset_index(drop=True)


def _model_name(outcomes: pd.DataFrame) -> str:
    """The model's name from a ``model`` column, else ``"Model"``."""
    if outcomes is not None and "model" in outcomes.columns and len(outcomes):
        return str(outcomes["model"].iloc[0])
    return "Model"


def _rmse(errors: pd.Series | np.ndarray) -> float:
    """Root mean squared error of the finite ``errors``."""
    e = np.asarray(errors, dtype=float)
    e = e[np.isfinite(e)]
    return metrics.rmse(e, np.zeros_like(e)) if e.size else float("nan")


# ----------------------------------------------------------------------------------------------- figures


@styled
def plot_forecast_fan(
    prices: pd.DataFrame, forecast: pd.DataFrame, *, sessions: int = 120, ax: Axes | None = None
) -> Figure:
    """Last ``sessions`` closes, then the forecast with its 80% and 95% bands and the flat naive line."""
    ax = new_axes(ax)
    history = _closes(prices).iloc[-sessions:]
    fc = _forecast(forecast)
    title = "Close price and forecast"
    if len(fc):
        title += f": {len(fc)} sessions ahead of {fc['as_of'].iloc[0].strftime(DATE_FORMAT)}"
    ax.set_title(title)
    ax.set_xlabel("Trading session")
    usd_axis(ax)
    if history.empty and fc.empty:
        empty_message(ax, "no prices or forecast yet")
        return figure_of(ax)
    axis = pd.DatetimeIndex(sorted(set(history.index) | set(fc["as_of"]) | set(fc["target_date"])))
    if len(history):
        ax.plot(positions(axis, history.index), history.to_numpy(), color=ACTUAL, label="Close")
    if len(fc):
        _draw_fan(ax, axis, fc)
    session_axis(ax, axis)
    legend_below(ax)
    return figure_of(ax)


@styled
def plot_forecast_zoom(
    prices: pd.DataFrame, forecast: pd.DataFrame, *, sessions: int = 20, ax: Axes | None = None
) -> Figure:
    """The fan zoomed on the last ``sessions`` closes and the forecast days, each close marked and the last
    horizon's bands written out."""
    fig = plot_forecast_fan(prices, forecast, sessions=sessions, ax=ax)
    ax = fig.axes[0] if ax is None else ax
    fc = _forecast(forecast)
    ax.set_title(f"Last {sessions} sessions and the next {len(fc)}" if len(fc) else ax.get_title(loc="left"))
    for line in ax.get_lines():
        if line.get_label() == "Close":
            line.set_marker("o")
            line.set_markersize(3)
    if len(fc):
        last = fc.iloc[-1]
        x = ax.get_xlim()[1] - 0.5
        for column in ("hi95", "hi80", "point", "lo80", "lo95"):
            ax.annotate(f"${last[column]:,.2f}", (x, last[column]), xytext=(6, 0), textcoords="offset points",
                        va="center", fontsize=8, color=MODEL if column == "point" else "0.35")  # fmt: skip
        ax.set_xlim(right=ax.get_xlim()[1] + 1.5)
    return fig


def _draw_fan(ax: Axes, axis: pd.DatetimeIndex, fc: pd.DataFrame) -> None:
    """The fan from the origin's close: bands, point path, naive line and a marker at the origin."""
    last = float(fc["naive"].iloc[0])
    x = np.concatenate([positions(axis, fc["as_of"].iloc[:1]), positions(axis, fc["target_date"])])

    def path(column: str) -> np.ndarray:
        return np.concatenate([[last], fc[column].to_numpy(float)])

    interval_bands(ax, x, path("lo80"), path("hi80"), path("lo95"), path("hi95"))
    ax.plot(x, path("point"), color=MODEL, marker="o", markersize=3, label="Forecast")
    ax.plot(x, np.full(len(x), last), color=NAIVE, linestyle="--", label="Naive (last close)")
    ax.axvline(x[0], color="0.55", linewidth=0.8, linestyle=":")


@styled
def plot_track_record(
    outcomes: pd.DataFrame, *, sessions: int = 120, horizon: int = 1, ax: Axes | None = None
) -> Figure:
    """Realised close vs the ``horizon``-session-ahead forecast (with its bands) and naive (the close at the
    origin), over the last ``sessions`` targets."""
    ax = new_axes(ax)
    rows = _matured(outcomes, horizon=horizon).iloc[-sessions:]
    ahead = "1-session-ahead" if horizon == 1 else f"{horizon}-sessions-ahead"
    ax.set_title(f"Track record: {ahead} forecast vs realised close")
    ax.set_xlabel("Target session")
    usd_axis(ax)
    if rows.empty:
        empty_message(ax)
        return figure_of(ax)
    x = np.arange(len(rows))
    interval_bands(ax, x, *(rows[c].to_numpy(float) for c in INTERVAL_COLUMNS))
    ax.plot(x, rows["actual"].to_numpy(float), color=ACTUAL, label="Realised close")
    scores = metrics.score(rows, metrics=("rmse", "naive_rmse"))
    rmse_m, rmse_n = scores["rmse"], scores["naive_rmse"]
    ax.plot(x, rows["point"].to_numpy(float), color=MODEL, label=f"{_model_name(outcomes)} (RMSE ${rmse_m:,.2f})")
    naive = f"Naive (RMSE ${rmse_n:,.2f})"
    ax.plot(x, rows["naive"].to_numpy(float), color=NAIVE, linestyle="--", linewidth=1.1, label=naive)
    session_axis(ax, rows["target_date"])
    legend_below(ax)
    return figure_of(ax)


@styled
def plot_rolling_skill(outcomes: pd.DataFrame, *, window: int = 20, ax: Axes | None = None) -> Figure:
    """Rolling ``window``-session RMSE of model and naive at horizon 1, with their ratio U2 on a twin axis."""
    ax = new_axes(ax)
    h1 = _matured(outcomes, horizon=1)
    ax.set_title(f"Rolling {window}-session RMSE of 1-session-ahead forecasts")
    ax.set_xlabel("Target session")
    ax.set_ylabel("RMSE (USD)")
    if len(h1) < window:
        empty_message(ax, EMPTY_TEXT if h1.empty else f"{len(h1)} matured forecasts; the window needs {window}")
        return figure_of(ax)
    roll = metrics.rolling_score(h1, window, ("rmse", "naive_rmse", "u2"))
    x = np.arange(len(h1))[window - 1 :]
    ax.plot(x, roll["rmse"].to_numpy(float), color=MODEL, label=f"{_model_name(outcomes)} RMSE")
    ax.plot(x, roll["naive_rmse"].to_numpy(float), color=NAIVE, linestyle="--", label="Naive RMSE")
    ax.set_ylim(bottom=0)
    twin = _u2_axis(ax, x, roll["u2"].to_numpy(float))
    session_axis(ax, h1["target_date"])
    ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = twin.get_legend_handles_labels()
    legend_below(ax, handles + more_handles, labels + more_labels)
    return figure_of(ax)


def _u2_axis(ax: Axes, x: np.ndarray, u2: np.ndarray) -> Axes:
    """A right-hand axis with U2 = model RMSE / naive RMSE and its break-even line at 1."""
    twin = ax.twinx()
    twin.spines["right"].set_visible(True)
    twin.grid(False)
    twin.plot(x, u2, color="0.35", linewidth=1.1, label="U2 = model / naive (right)")
    twin.axhline(1.0, color="0.35", linestyle=":", linewidth=1.0, label="U2 = 1: no better than naive")
    top = np.nanmax(u2) if np.isfinite(u2).any() else 1.0
    twin.set_ylim(0, max(1.5, 1.15 * top))
    twin.set_ylabel("U2 ratio")
    return twin


@styled
def plot_calibration(outcomes: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Share of realised closes inside the 80% and 95% intervals, by horizon, against the nominal levels and the 95%
    binomial band that honest intervals stay in on this many forecasts."""
    ax = new_axes(ax)
    frame = _matured(outcomes)
    ax.set_title("Interval calibration: realised closes inside the interval")
    ax.set_xlabel("Horizon (sessions ahead)")
    ax.set_ylabel("Empirical coverage")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if frame.empty:
        empty_message(ax)
        return figure_of(ax)
    actual = frame["actual"]
    cover = (
        frame.assign(
            in80=actual.between(frame["lo80"], frame["hi80"]), in95=actual.between(frame["lo95"], frame["hi95"])
        )
        .groupby("horizon")
        .agg(in80=("in80", "mean"), in95=("in95", "mean"), n=("in80", "size"))
    )
    for level, color in ((95, COVER95), (80, COVER80)):
        ax.plot(cover.index, cover[f"in{level}"], color=color, marker="o", clip_on=False, label=f"{level}% interval")
        binomial_band(ax, cover["n"], level / 100, color)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(cover) == 1:
        ax.set_xlim(cover.index[0] - 1, cover.index[0] + 1)
    counts = f"{cover['n'].min()}" if cover["n"].nunique() == 1 else f"{cover['n'].min()}–{cover['n'].max()}"
    ax.text(0.99, 0.03, f"n = {counts} forecasts per horizon", transform=ax.transAxes, ha="right", color="0.4")
    ax.legend(loc="lower left", ncols=2)
    return figure_of(ax)


@styled
def plot_residuals(outcomes: pd.DataFrame, *, ax: Sequence[Axes] | None = None) -> Figure:
    """Two panels of 1-session-ahead residuals (actual − point, USD): histogram vs naive, and over time.

    Args:
        ax: ``(histogram_axes, time_axes)`` to draw into, or ``None`` for a new 9 x 6.5 inch figure.
    """
    hist_ax, time_ax = _two_axes(ax)
    h1 = _matured(outcomes, horizon=1)
    hist_ax.set_title("Residuals of 1-session-ahead forecasts (actual − forecast)")
    hist_ax.set_xlabel("Residual (USD)")
    hist_ax.set_ylabel("Forecasts")
    time_ax.set_title("Residuals over time")
    time_ax.set_xlabel("Target session")
    time_ax.set_ylabel("Residual (USD)")
    if h1.empty:
        empty_message(hist_ax)
        empty_message(time_ax)
        return figure_of(hist_ax)
    name = _model_name(outcomes)
    res_m = (h1["actual"] - h1["point"]).to_numpy(float)
    res_n = (h1["actual"] - h1["naive"]).to_numpy(float)
    _residual_histogram(hist_ax, res_m, res_n, name)
    x = np.arange(len(h1))
    time_ax.plot(x, res_n, color=NAIVE, linewidth=1.0, linestyle="--", label="Naive")
    time_ax.plot(x, res_m, color=MODEL, linewidth=1.3, label=name)
    time_ax.axhline(0, color="0.3", linewidth=0.8)
    session_axis(time_ax, h1["target_date"])
    legend_below(time_ax)
    return figure_of(hist_ax)


def _residual_histogram(ax: Axes, res_m: np.ndarray, res_n: np.ndarray, name: str) -> None:
    """Model residuals as filled bars, naive residuals as an outline on the same bins, and a line at zero."""
    bins = np.histogram_bin_edges(np.concatenate([res_m, res_n]), bins=int(np.clip(res_m.size // 4, 5, 30))).tolist()
    ax.hist(res_m, bins=bins, color=MODEL, alpha=0.55, label=f"{name}: mean {res_m.mean():+.2f}, sd {res_m.std():.2f}")
    naive_label = f"Naive: mean {res_n.mean():+.2f}, sd {res_n.std():.2f}"
    ax.hist(res_n, bins=bins, histtype="step", color=NAIVE, linewidth=1.6, label=naive_label)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left")


def _two_axes(ax: Sequence[Axes] | None) -> tuple[Axes, Axes]:
    """The given pair of axes, or the two stacked panels of a new figure."""
    if ax is None:
        fig = Figure(figsize=(9.0, 6.5), dpi=DPI, layout="constrained")
        top, bottom = fig.subplots(2, 1)
        return top, bottom
    if isinstance(ax, Axes) or len(ax) != 2:
        raise TypeError("plot_residuals draws two panels: pass ax=(histogram_axes, time_axes)")
    return ax[0], ax[1]


@styled
def plot_training(
    history: Mapping[str, Sequence[float]],
    *,
    kind: str,
    parent: str | None = None,
    base: Mapping[str, Sequence[float]] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Training and validation loss by epoch (log scale when they span a decade); the title names kind and parent.

    Args:
        history: this version's own training (``loss`` and, for full fits, ``val_loss`` per epoch).
        kind: ``full`` or ``finetune``.
        parent: label of the parent version, if any.
        base: for a fine-tune, the curves of the full fit it descends from, drawn faintly for scale.
    """
    ax = new_axes(ax)
    ax.set_title(_training_title(kind, parent))
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss (MSE of scaled targets)")
    curves = _loss_curves(history)
    if not curves:
        empty_message(ax, "no training history recorded")
        return figure_of(ax)
    context = _loss_curves(base or {}) if kind == "finetune" else {}
    for (label, values), style in zip(context.items(), ("-", "--"), strict=False):
        epochs = np.arange(1, values.size + 1)
        ax.plot(epochs, values, color="0.65", linestyle=style, linewidth=1.1, label=f"Full fit: {label.lower()} loss")
    for (label, values), color in zip(curves.items(), (MODEL, NAIVE), strict=False):
        epochs = np.arange(1, values.size + 1)
        marker = "o" if values.size <= 40 else None
        name = f"Fine-tune: {label.lower()} loss" if kind == "finetune" else f"{label} loss"
        ax.plot(epochs, values, color=color, marker=marker, markersize=3, label=name)
    _mark_best_and_scale(ax, curves, context)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if "Validation" not in curves:
        note = "fine-tunes have no validation split" if kind == "finetune" else "no validation loss recorded"
        ax.set_xlabel(f"Epoch ({note})")
    legend_below(ax)
    return figure_of(ax)


def _loss_curves(history: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """Non-empty ``loss`` and ``val_loss`` arrays, keyed ``Training`` and ``Validation``."""
    keys = (("loss", "Training"), ("val_loss", "Validation"))
    curves = {label: np.asarray((history or {}).get(key, []), dtype=float) for key, label in keys}
    return {label: values for label, values in curves.items() if values.size}


def _mark_best_and_scale(ax: Axes, curves: dict[str, np.ndarray], context: dict[str, np.ndarray]) -> None:
    """Star the best validation epoch; a log y-scale when the positive losses span a decade or more, else a linear
    axis from 0 (so small differences are not blown up)."""
    val = curves.get("Validation")
    if val is not None and np.isfinite(val).any():
        best = int(np.nanargmin(val))
        ax.plot(best + 1, val[best], "*", color=NAIVE, markersize=12, label=f"Best validation (epoch {best + 1})")
    finite = np.concatenate([v[np.isfinite(v)] for v in (*curves.values(), *context.values())])
    if finite.size and (finite > 0).all() and finite.max() >= LOG_SPAN * finite.min():
        ax.set_yscale("log")
        ax.set_ylabel("Loss (MSE of scaled targets, log scale)")
    else:
        ax.set_ylim(bottom=min(0.0, float(finite.min())) if finite.size else 0.0)


def _training_title(kind: str, parent: str | None) -> str:
    """``Training loss: full fit`` or ``Training loss: fine-tune of <parent>``."""
    if kind == "finetune":
        return f"Training loss: fine-tune of {parent}" if parent else "Training loss: fine-tune (parent unknown)"
    label = "full fit" if kind == "full" else kind
    return f"Training loss: {label}" + (f" (parent {parent})" if parent else "")


@styled
def plot_actual_vs_predicted(
    actual: pd.Series, predicted: pd.Series, *, title: str, ylabel: str = "value", ax: Axes | None = None
) -> Figure:
    """Actual and predicted values on one axis (dates, if any, on a gapless session axis)."""
    ax = new_axes(ax)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    frame = pd.concat({"actual": actual, "predicted": predicted}, axis=1).sort_index()
    dated = isinstance(frame.index, pd.DatetimeIndex)
    ax.set_xlabel("Session" if dated else str(frame.index.name or "step"))
    if frame.dropna(how="all").empty:
        empty_message(ax, "nothing to plot")
        return figure_of(ax)
    x = np.arange(len(frame)) if dated else frame.index.to_numpy()
    rmse = _rmse(frame["actual"] - frame["predicted"])
    ax.plot(x, frame["actual"].to_numpy(float), color=ACTUAL, label="Actual")
    ax.plot(x, frame["predicted"].to_numpy(float), color=MODEL, linestyle="--", label=f"Predicted (RMSE {rmse:,.3g})")
    if dated:
        session_axis(ax, frame.index)
    legend_below(ax)
    return figure_of(ax)


BACKTEST_FIGURES: tuple[str, ...] = (
    "track_record.png", "track_record_h5.png", "rolling_skill.png", "rolling_u2.png", "loss_differential.png",
    "interval_width.png", "calibration.png", "pit.png", "residuals.png",
)  # fmt: skip


def backtest_figures(
    forecasts: pd.DataFrame,
    summary: Mapping[str, object] | None = None,
    *,
    primary: str = "lstm",
    histories: Sequence[Mapping[str, Sequence[float]]] = (),
) -> dict[str, Figure]:
    """Every figure of a backtest, by file name (:data:`BACKTEST_FIGURES`, plus ``training.png`` with histories).

    Args:
        forecasts: every model's walk-forward rows (``model`` column) with their ``actual``.
        summary: the backtest summary; its ``start``/``end`` keep the targets the summary scores.
        primary: the model of the single-model figures (track records, rolling RMSE, residuals).
        histories: training histories; the last one is drawn as ``training.png``.
    """
    frame = forecasts
    if summary and summary.get("start") and summary.get("end"):
        targets = pd.to_datetime(frame["target_date"])
        frame = frame.loc[targets.between(pd.Timestamp(str(summary["start"])), pd.Timestamp(str(summary["end"])))]
    main = frame.loc[frame["model"] == primary]
    last_h = int(frame["horizon"].max()) if len(frame) else 5
    figures = {
        "track_record.png": plot_track_record(main, sessions=len(main)),
        "track_record_h5.png": plot_track_record(main, sessions=len(main), horizon=last_h),
        "rolling_skill.png": plot_rolling_skill(main),
        "rolling_u2.png": plot_rolling_u2(frame),
        "loss_differential.png": plot_loss_differential(frame),
        "interval_width.png": plot_interval_width(frame),
        "calibration.png": _calibration_panels(frame),
        "pit.png": _pit_panels(frame),
        "residuals.png": plot_residuals(main),
    }
    if histories:
        figures["training.png"] = plot_training(histories[-1], kind="full")
    return figures


def _calibration_panels(frame: pd.DataFrame) -> Figure:
    """80% and 95% coverage by horizon of every model, side by side."""
    fig = Figure(figsize=(9.0, 4.0), dpi=DPI, layout="constrained")
    for ax, level in zip(fig.subplots(1, 2), (80, 95), strict=True):
        plot_coverage_by_model(frame, level=level, ax=ax)
        if legend := ax.get_legend():
            legend.remove()
            ax.legend(loc="lower left", fontsize=8, ncols=2)
    return fig


def _pit_panels(frame: pd.DataFrame, horizon: int = 1) -> Figure:
    """One PIT histogram per model, two per row."""
    names = list(dict.fromkeys(frame["model"].astype(str))) if len(frame) else ["Model"]
    rows = (len(names) + 1) // 2
    fig = Figure(figsize=(9.0, 3.2 * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        plot_pit_histogram(frame.loc[frame["model"] == name] if len(frame) else frame, horizon=horizon, ax=ax)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return fig
