"""The ``run``, ``backfill`` and ``history`` commands (Prefect is imported only by the first two)."""

from __future__ import annotations

import datetime as dt
import logging

import typer

from db import migrate
from db.engine import check_connection, make_engine
from db.errors import DatabaseError
from db.repository import Repository
from flows.settings import Settings
from forecaster.data.sources import parse_source
from forecaster.errors import ForecasterError
from forecaster.models.presets import get_preset

logger = logging.getLogger("flows.cli")


def prepare_database(url: str) -> None:
    """Create the schema on a brand-new database (embedded defaults); refuse an outdated one."""
    engine = make_engine(url)
    try:
        check_connection(engine)
        if migrate.current_revision(url) is None:
            logger.info("new database: creating the schema")
            migrate.upgrade(url)
        migrate.ensure_schema_current(engine)
    finally:
        engine.dispose()


def _quiet_prefect_tracebacks() -> None:
    """Our expected errors (bad input, unreachable source) are reported once by the CLI, without a traceback."""

    def strip(record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ForecasterError | DatabaseError):
            record.exc_info, record.exc_text = None, None
        return True

    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(strip)


def run_daily(*, tickers: list[str] | None, as_of: dt.date | None, source: str | None, retrain: str | None,
              preset: str | None, horizon: int | None, dask: str | None) -> list[dict]:  # fmt: skip
    """Run the ``daily-forecast`` flow once in-process (Prefect's ephemeral mode: no server needed).

    Parameters left out (None) take their values from the settings.
    """
    from flows.jobs.daily import resolve_as_of

    settings = Settings()
    tickers, source, preset = tickers or settings.tickers, source or settings.source, preset or settings.preset
    retrain, horizon = retrain or settings.retrain, horizon or settings.horizon
    get_preset(preset)
    parse_source(source)
    if as_of is not None:
        resolve_as_of(as_of)  # a future date fails here, before Prefect starts
    prepare_database(settings.db_url)
    from flows.daily import daily_forecast  # deliberately lazy: Prefect only once the inputs are known good

    _quiet_prefect_tracebacks()
    flow = daily_forecast
    address = dask or settings.dask_address
    if address:
        from prefect_dask import DaskTaskRunner

        flow = daily_forecast.with_options(task_runner=DaskTaskRunner(address=address))
    results = flow(tickers=tickers, as_of=as_of, source=source, retrain=retrain, horizon=horizon, preset=preset)
    if not results:
        typer.echo(f"{as_of} is not an NYSE trading day: nothing to do")
    for r in results:
        typer.echo(
            f"{r['ticker']} {r['as_of']}: {r['status']} (run {r['run_id']}, model version {r['model_version_id']})"
        )
        for f in r["forecasts"]:
            bands = f"80% [{f['lo80']:.2f}, {f['hi80']:.2f}]  95% [{f['lo95']:.2f}, {f['hi95']:.2f}]"
            typer.echo(f"  h={f['horizon']} {f['target_date']}  {f['point']:.2f}  {bands}")
    return results


def run_backfill(*, start: dt.date, end: dt.date, tickers: list[str] | None, source: str | None,
                 retrain: str | None, preset: str | None, horizon: int | None) -> dict:  # fmt: skip
    """Run the ``backfill`` flow in-process; parameters left out (None) take their values from the settings."""
    settings = Settings()
    tickers, source, preset = tickers or settings.tickers, source or settings.source, preset or settings.preset
    retrain, horizon = retrain or settings.retrain, horizon or settings.horizon
    get_preset(preset)
    parse_source(source)
    prepare_database(settings.db_url)
    from flows.backfill import backfill  # deliberately lazy: Prefect only once the inputs are known good

    _quiet_prefect_tracebacks()
    counts = backfill(start=start, end=end, tickers=tickers, source=source, retrain=retrain, horizon=horizon,
                      preset=preset)  # fmt: skip
    typer.echo(f"backfill {start}..{end}: {counts}")
    return counts


def show_history(*, ticker: str | None, last: int) -> None:
    """Print the most recent matured live forecasts with their outcomes (no TensorFlow, no Prefect)."""
    with Repository.from_url(Settings().db_url) as repo:
        frame = repo.recent_outcomes(ticker, last=last)
    if frame.empty:
        typer.echo("no matured forecasts yet (run `tsla-forecast run` on consecutive trading days)")
        return
    cols = ["ticker", "as_of", "target_date", "horizon", "point", "lo80", "hi80", "actual", "error", "naive_error",
            "direction_hit", "in80", "in95"]  # fmt: skip
    typer.echo(frame[[c for c in cols if c in frame.columns]].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
