"""``backtest``: the walk-forward backtest as a Prefect flow (the ``backtest`` deployment; manual, no schedule).

It loads and validates prices like ``tsla-forecast backtest`` and walks the LSTM forward beside the naive, drift and
moving-average baselines on the same origins, then writes ``summary.json`` and ``forecasts.csv`` to ``output``
(default ``<TSLA_FORECAST_HOME>/backtests/<TICKER>_<start>_<end>/``).

Storing backtest runs and metrics in the database (``runs``/``metrics`` with scope ``backtest``) is a later step;
for now the output folder is the only record.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from prefect import flow

from flows.settings import Settings

logger = logging.getLogger("flows.backtest")


@flow(name="backtest", log_prints=True)
def backtest(
    start: dt.date,
    end: dt.date,
    ticker: str = "TSLA",
    source: str = "yahoo",
    preset: str = "default",
    refit_every: int = 20,
    horizon: int = 5,
    epochs: int | None = None,
    output: str | None = None,
) -> dict:
    """Walk-forward backtest of ``ticker`` on targets dated in ``[start, end]``; returns the summary."""
    from flows.cli_backtest import load_validated_prices
    from forecaster.backtest import run_backtest
    from forecaster.baselines import Drift, MovingAverage, Naive
    from forecaster.errors import ConfigError
    from forecaster.lstm import LSTMForecaster
    from forecaster.presets import get_preset

    if start > end:
        raise ConfigError(f"backtest start {start} is after end {end}")
    p = get_preset(preset)
    if epochs:
        p = p.replace(epochs=epochs)
    prices = load_validated_prices(source, ticker, end=end)
    models = [LSTMForecaster(p, horizon), Naive(), Drift(), MovingAverage()]
    result = run_backtest(models, prices, start, end, horizon=horizon, refit_every=refit_every or None)
    summary = result.summary
    # the same summary.json layout as `tsla-forecast backtest`: the LSTM is "model"
    summary["model"] = summary.pop("lstm")
    summary["by_horizon"]["model"] = summary["by_horizon"].pop("lstm")
    summary.update(preset=p.name, ticker=ticker, source=source)
    folder = Path(output) if output else Settings().home / "backtests" / f"{ticker}_{start}_{end}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    result.forecasts.to_csv(folder / "forecasts.csv", index=False, date_format="%Y-%m-%d")
    logger.info("backtest %s %s..%s: %d origins in %.1fs, wrote %s", ticker, start, end, summary["n_forecasts"],
                summary["seconds"], folder)  # fmt: skip
    return summary
