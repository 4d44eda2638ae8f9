"""Walk-forward evaluation, written once for every :class:`~forecaster.models.base.Forecaster`.

Every model, baselines included, is run on exactly the same forecast origins. At each origin it sees only the
rows dated up to that origin: a full ``fit`` every ``refit_every`` origins, ``update`` (a fine-tune for the
LSTM) in between. Scores are computed on the targets dated in ``[start, end]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, NotEnoughDataError
from forecaster.evaluation import metrics
from forecaster.models.base import Forecaster
from forecaster.policy import trail_counts


@dataclass
class BacktestResult:
    """Forecasts of every model (long frame) and the summary that ``summary.json`` holds."""

    forecasts: pd.DataFrame
    summary: dict[str, Any]
    histories: list[dict[str, list[float]]] = field(default_factory=list)


def forecast_origins(prices: pd.DataFrame, start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """Origins whose next session (the horizon-1 target) is dated in ``[start, end]``."""
    start_, end_ = pd.Timestamp(start), pd.Timestamp(end)
    if start_ > end_:
        raise ConfigError(f"start {start_.date()} is after end {end_.date()}")
    dates = prices.index
    targets = (dates >= start_) & (dates <= end_)
    positions = np.flatnonzero(targets) - 1
    positions = positions[positions >= 0]
    if len(positions) == 0:
        raise NotEnoughDataError(
            f"no forecast origins: prices span {dates[0].date()}..{dates[-1].date()}, "
            f"which has no session in {start_.date()}..{end_.date()} after its first row"
        )
    return pd.DatetimeIndex(dates[positions], name="as_of")


def walk_forward(
    model: Forecaster,
    prices: pd.DataFrame,
    origins: Sequence[pd.Timestamp],
    *,
    horizon: int,
    refit_every: int | None = None,
    on_step: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Forecasts of ``model`` from each origin, using only rows dated up to it, joined to the actual closes.

    Args:
        refit_every: full ``fit`` every this many origins; ``None`` or 0 fits once, then only updates. A model
            that ``schedules_itself`` (the production policy, :class:`forecaster.step.PolicyForecaster`) is fitted
            once and decides itself when to retrain.
        on_step: called after each origin (progress bars).
    """
    frames = []
    refit = None if getattr(model, "schedules_itself", False) else refit_every
    for i, origin in enumerate(origins):
        history = prices.loc[:origin]
        if i == 0 or (refit and i % refit == 0):
            model.fit(history)
        else:
            model.update(history)
        frames.append(model.predict(horizon))
        if on_step is not None:
            on_step()
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "model", model.name)
    out["actual"] = prices["close"].reindex(out["target_date"]).to_numpy()
    return out


def summarise(forecasts: pd.DataFrame, scale: float, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """:func:`forecaster.evaluation.metrics.score` per model at horizon 1 (top level) and for every horizon
    (``by_horizon``),
    on targets in range. Tercile coverages need a ``volatility`` column
    (:func:`forecaster.evaluation.metrics.with_volatility`);
    their cut points are the scored rows' own as-of volatilities, per model and horizon."""
    scored = forecasts[(forecasts["target_date"] >= start) & (forecasts["target_date"] <= end)]
    summary: dict[str, Any] = {"by_horizon": {}}
    for name, frame in scored.groupby("model", sort=False):
        per_h = metrics.score_by_horizon(frame, scale=scale)
        summary[str(name)] = per_h[1]
        summary["by_horizon"][str(name)] = per_h
    return summary


def run_backtest(
    models: Sequence[Forecaster],
    prices: pd.DataFrame,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    horizon: int = 5,
    refit_every: int | None = 20,
    on_step: Callable[[], None] | None = None,
) -> BacktestResult:
    """Walk-forward every model on the same origins and summarise them side by side.

    The MASE scale is the in-sample naive MAE of the closes up to the first origin only; the volatility of each
    forecast (for the tercile coverages) is the trailing 20-session mean |log return| up to its origin.
    """
    t0 = time.perf_counter()
    origins = forecast_origins(prices, start, end)
    scale = metrics.naive_scale(prices.loc[: origins[0], "close"].to_numpy())
    frames, histories, trails = [], [], {}
    for model in models:
        frames.append(walk_forward(model, prices, origins, horizon=horizon, refit_every=refit_every, on_step=on_step))
        if history := getattr(model, "fit_history_", None):
            histories.append(history)
        if trail := getattr(model, "trail_", None):
            trails[model.name] = {"counts": trail_counts(trail), "trail": trail}
    forecasts = pd.concat(frames, ignore_index=True)
    start_, end_ = pd.Timestamp(start), pd.Timestamp(end)
    summary = summarise(metrics.with_volatility(forecasts, prices["close"]), scale, start_, end_)
    n_forecasts = int(((forecasts["horizon"] == 1) & (forecasts["model"] == models[0].name)).sum())
    summary.update(
        n_forecasts=n_forecasts,
        start=str(start_.date()),
        end=str(end_.date()),
        horizon=horizon,
        refit_every=refit_every,
        mase_scale=scale,
        seconds=round(time.perf_counter() - t0, 2),
    )
    if trails:
        summary["policy"] = trails
    return BacktestResult(forecasts=forecasts, summary=summary, histories=histories)
