"""The ``backtest`` command: load and validate prices, walk forward, write summary.json, forecasts.csv and plots."""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from pathlib import Path

import typer

from db.repository import Repository
from flows.cli.run import prepare_database
from flows.settings import Settings
from forecaster.data.sources import parse_source
from forecaster.errors import ConfigError
from forecaster.models.presets import get_preset


def run_backtest_command(
    *, source: str | None, ticker: str | None, start: dt.datetime, end: dt.datetime, preset: str | None,
    refit_every: int, horizon: int | None, epochs: int | None, output: Path, store: bool = True,
    policy: str = "production", compare_schedule: bool = False,
) -> dict:  # fmt: skip
    """Run the walk-forward backtest, write its outputs and (``store``) record it in the database.

    ``source``, ``ticker`` (the first of ``tickers``), ``preset`` and ``horizon`` left out come from the settings.
    """
    settings = Settings()
    preset = preset or settings.preset
    get_preset(preset)  # an unknown preset is a clear error before any data is fetched
    if start > end:
        raise ConfigError(f"--start {start.date()} is after --end {end.date()}")
    parse_source(source or settings.source)  # an unknown source too
    # the job (scipy, scikit-learn, the models) loads only once these inputs are known good: a typo fails in ~1 s
    from flows.jobs.backtest import BacktestParams, format_table, run_backtest_job

    params = BacktestParams.from_settings(settings, start.date(), end.date(), ticker=ticker, source=source,
                                          preset=preset, horizon=horizon, refit_every=refit_every, epochs=epochs,
                                          policy=policy, compare_schedule=compare_schedule)  # fmt: skip
    with _open_repository(settings) if store else nullcontext() as repo:
        summary = run_backtest_job(params, output, repo, settings=settings)
    typer.echo(format_table(summary))
    stored = f"; stored as backtest run {summary['run_id']}" if summary.get("run_id") else ""
    if summary.get("rebuilt"):
        typer.echo(f"this backtest is already stored as run {summary['run_id']}: recomputed only the files in {output}")
    elif summary.get("status") == "already_done":
        typer.echo(f"this backtest is already stored as run {summary['run_id']}: nothing recomputed")
    else:
        typer.echo(f"wrote {output}/summary.json, forecasts.csv and plots ({summary['seconds']:.1f}s){stored}")
    return summary


def _open_repository(settings: Settings) -> Repository:
    prepare_database(settings.db_url)
    return Repository.from_url(settings.db_url, artifact_retention=settings.artifact_retention)
