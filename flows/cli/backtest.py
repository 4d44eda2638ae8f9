"""The ``backtest`` command: load and validate prices, walk forward, write summary.json, forecasts.csv and plots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from forecaster.errors import ConfigError


def run_backtest_command(
    *, source: str, ticker: str, start: dt.datetime, end: dt.datetime, preset: str, refit_every: int,
    horizon: int, epochs: int | None, output: Path, store: bool = True,
) -> dict:  # fmt: skip
    """Run the walk-forward backtest, write its outputs and (``store``) record it in the database."""
    from flows.jobs.backtest import BacktestParams, format_table, run_backtest_job
    from forecaster.presets import get_preset

    get_preset(preset)  # an unknown preset is a clear error before any data is fetched
    if start > end:
        raise ConfigError(f"--start {start.date()} is after --end {end.date()}")
    params = BacktestParams(ticker, start.date(), end.date(), source, preset, refit_every, horizon, epochs)
    repo = _open_repository() if store else None
    try:
        summary = run_backtest_job(params, output, repo)
    finally:
        if repo is not None:
            repo.dispose()
    typer.echo(format_table(summary))
    stored = f"; stored as backtest run {summary['run_id']}" if summary.get("run_id") else ""
    if summary.get("status") == "already_done":
        typer.echo(f"this backtest is already stored as run {summary['run_id']}: nothing recomputed")
    else:
        typer.echo(f"wrote {output}/summary.json, forecasts.csv and plots ({summary['seconds']:.1f}s){stored}")
    return summary


def _open_repository():
    from db.repository import Repository
    from flows.cli.run import prepare_database
    from flows.settings import Settings

    settings = Settings()
    prepare_database(settings.db_url)
    return Repository.from_url(settings.db_url, artifact_retention=settings.artifact_retention)
