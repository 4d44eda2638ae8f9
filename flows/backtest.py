"""``backtest``: the walk-forward backtest as a Prefect flow (the ``backtest`` deployment; manual, no schedule).

It runs :func:`flows.jobs.backtest.run_backtest_job`, like ``tsla-forecast backtest``: the LSTM beside the naive,
drift and moving-average baselines on the same origins; ``summary.json``, ``forecasts.csv`` and plots go to
``output`` (default ``<TSLA_FORECAST_HOME>/backtests/<TICKER>_<start>_<end>/``), and the run, its metrics and its
forecasts are stored with scope ``backtest``. The same parameters twice store nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from db.repository import Repository
from flows.jobs.backtest import BacktestParams, format_table, run_backtest_job
from flows.settings import Settings
from flows.tickers import Ticker

logger = logging.getLogger("flows.backtest")


@flow(name="backtest", log_prints=True)
def backtest(
    start: dt.date,
    end: dt.date,
    ticker: Ticker | None = None,
    source: str | None = None,
    preset: str | None = None,
    refit_every: int = 20,
    horizon: int | None = None,
    epochs: int | None = None,
    output: str | None = None,
    policy: str = "production",
    compare_schedule: bool = False,
) -> dict:
    """Walk-forward backtest of ``ticker`` on targets dated in ``[start, end]``, stored; returns the summary.

    ``ticker`` (the first of ``tickers``), ``source``, ``preset`` and ``horizon`` default to the settings.
    """
    settings = Settings()
    ticker = ticker or settings.tickers[0]
    params = BacktestParams.from_settings(settings, start, end, ticker=ticker, source=source, preset=preset,
                                          horizon=horizon, refit_every=refit_every, epochs=epochs, policy=policy,
                                          compare_schedule=compare_schedule)  # fmt: skip
    folder = Path(output) if output else settings.home / "backtests" / f"{ticker}_{start}_{end}"
    run_id = flow_run.get_id()
    with Repository.from_url(settings.db_url, artifact_retention=settings.artifact_retention) as repo:
        summary = run_backtest_job(params, folder, repo, settings=settings, flow_run_id=str(run_id) if run_id else None)
    create_markdown_artifact(
        f"# Backtest {ticker} {start}..{end}\n\npreset `{params.preset}`, {params.policy} policy, run "
        f"{summary.get('run_id')} ({summary.get('status')})\n\n```\n{format_table(summary)}\n```\n",
        key="backtest-summary",
        description="Walk-forward backtest beside the baselines",
    )
    return summary
