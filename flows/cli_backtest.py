"""The ``backtest`` command: load and validate prices, walk forward, write summary.json, forecasts.csv and plots."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd
import typer

from forecaster.errors import ConfigError, NotEnoughDataError

logger = logging.getLogger("flows.backtest")
TABLE_METRICS = ("rmse", "mae", "mape", "r2", "mase", "u2", "directional_accuracy", "coverage80", "coverage95")


def load_validated_prices(source: str, ticker: str, start: dt.date | None = None, end: dt.date | None = None):
    """Fetch ``ticker`` from ``source`` (yahoo, csv:PATH, synthetic) and validate it; raises on any problem."""
    from forecaster.sources import parse_source
    from forecaster.validation import ensure_valid

    return ensure_valid(parse_source(source).fetch(ticker, start, end))


def run_backtest_command(
    *, source: str, ticker: str, start: dt.datetime, end: dt.datetime, preset: str, refit_every: int,
    horizon: int, epochs: int | None, output: Path,
) -> dict:  # fmt: skip
    """Run the walk-forward backtest and write its outputs; returns the summary."""
    from forecaster.presets import get_preset

    p = get_preset(preset)
    if epochs:
        p = p.replace(epochs=epochs)
    if start > end:
        raise ConfigError(f"--start {start.date()} is after --end {end.date()}")
    prices = load_validated_prices(source, ticker, end=end.date())
    result = _walk_forward(prices, p, start, end, horizon, refit_every)
    summary = result.summary
    summary["model"] = summary.pop("lstm")
    summary["by_horizon"]["model"] = summary["by_horizon"].pop("lstm")
    summary.update(preset=p.name, ticker=ticker, source=source)
    _write_outputs(output, result, summary)
    typer.echo(format_table(summary))
    typer.echo(f"wrote {output}/summary.json, forecasts.csv and plots ({summary['seconds']:.1f}s)")
    return summary


def _walk_forward(prices: pd.DataFrame, preset, start, end, horizon: int, refit_every: int):
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from forecaster.backtest import forecast_origins, run_backtest
    from forecaster.baselines import Drift, MovingAverage, Naive
    from forecaster.lstm import LSTMForecaster

    origins = forecast_origins(prices, start, end)
    before = int((prices.index <= origins[0]).sum())
    if before < preset.window + 2:
        raise NotEnoughDataError(
            f"only {before} rows up to the first origin {origins[0].date()}, but window {preset.window} needs more"
        )
    models = [LSTMForecaster(preset, horizon), Naive(), Drift(), MovingAverage()]
    logger.info("walk-forward over %d origins %s..%s, refit every %s", len(origins), origins[0].date(),
                origins[-1].date(), refit_every or "never")  # fmt: skip
    with logging_redirect_tqdm(), tqdm(total=len(origins) * len(models), unit="origin", desc="walk-forward") as bar:
        return run_backtest(
            models, prices, start, end, horizon=horizon, refit_every=refit_every or None, on_step=bar.update
        )


def _write_outputs(output: Path, result, summary: dict) -> None:
    from forecaster import plots

    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    result.forecasts.to_csv(output / "forecasts.csv", index=False, date_format="%Y-%m-%d")
    lstm = result.forecasts[result.forecasts["model"] == "lstm"]
    outcomes = lstm.rename(columns={"origin": "as_of", "last_close": "naive"})
    figures = {
        "track_record.png": plots.plot_track_record(outcomes, sessions=len(outcomes)),
        "rolling_skill.png": plots.plot_rolling_skill(outcomes),
        "calibration.png": plots.plot_calibration(outcomes),
        "residuals.png": plots.plot_residuals(outcomes),
    }
    if result.histories:
        figures["training.png"] = plots.plot_training(result.histories[-1], kind="full")
    for name, fig in figures.items():
        plots.save_figure(fig, output / name)


def format_table(summary: dict) -> str:
    """A fixed-width table: one row per model, the metrics as columns."""
    names = [n for n in ("model", "naive", "drift", "moving_average") if n in summary]
    head = f"{'h=1':<15}" + "".join(f"{m:>11}" for m in TABLE_METRICS)
    rows = [head]
    for name in names:
        cells = "".join(f"{summary[name].get(m, float('nan')):>11.4g}" for m in TABLE_METRICS)
        rows.append(f"{name:<15}{cells}")
    return "\n".join(rows)
