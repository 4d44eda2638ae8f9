"""The ``run``, ``backfill`` and ``history`` commands (Prefect is imported only by the first two)."""

from __future__ import annotations

import datetime as dt
import json
import logging

import typer

from db import migrate
from db.engine import check_connection, make_engine
from db.repository import Repository
from flows.cli.common import describe_error, existing_database
from flows.cli.preflight import check_range, check_run_inputs
from flows.settings import Settings
from forecaster.data.calendar import sessions

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
    """Our expected errors (bad input, unreachable source) are reported once by the CLI, without a traceback; under
    ``-q`` Prefect's own error lines go too (the CLI's ``error: ...`` line says it), its warnings stay."""
    quiet = logging.getLogger().getEffectiveLevel() > logging.INFO

    def strip(record: logging.LogRecord) -> bool:
        if not record.name.startswith("prefect"):
            return True
        if quiet and record.levelno >= logging.ERROR:
            return False
        if record.exc_info and record.exc_info[1] is not None and describe_error(record.exc_info[1]) is not None:
            record.exc_info, record.exc_text = None, None
        return True

    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):  # Prefect's handlers and the root's
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(strip)


def run_daily(*, tickers: list[str] | None, as_of: dt.date | None, source: str | None, retrain: str | None,
              preset: str | None, horizon: int | None, dask: str | None) -> list[dict]:  # fmt: skip
    """Run the ``daily-forecast`` flow once in-process (Prefect's ephemeral mode: no server needed).

    Parameters left out (None) take their values from the settings.
    """
    from forecaster.data.calendar import resolve_as_of  # light: a bad date fails before the job loads

    settings = Settings()
    tickers, source, preset = tickers or settings.tickers, source or settings.source, preset or settings.preset
    retrain, horizon = retrain or settings.retrain, horizon or settings.horizon
    check_run_inputs(tickers, source, preset, resolve_as_of(as_of), settings)  # a future date fails here too
    address = dask or settings.dask_address
    runner = None
    if address:  # every worker must report to this process's Prefect API: refused (one line) before any work
        from flows.cluster import dask_task_runner

        runner = dask_task_runner(address)
    prepare_database(settings.db_url)
    from flows.daily import daily_forecast  # deliberately lazy: Prefect only once the inputs are known good

    _quiet_prefect_tracebacks()
    flow = daily_forecast.with_options(task_runner=runner) if runner else daily_forecast  # type: ignore[arg-type]
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
    from forecaster.data.calendar import resolve_as_of  # light: a bad date fails before the job loads

    settings = Settings()
    tickers, source, preset = tickers or settings.tickers, source or settings.source, preset or settings.preset
    retrain, horizon = retrain or settings.retrain, horizon or settings.horizon
    check_range(start, end)
    days = sessions(start, min(end, resolve_as_of(None) or end))
    check_run_inputs(tickers, source, preset, days[-1].date() if len(days) else None, settings)
    prepare_database(settings.db_url)
    from flows.backfill import backfill  # deliberately lazy: Prefect only once the inputs are known good

    _quiet_prefect_tracebacks()
    counts = backfill(start=start, end=end, tickers=tickers, source=source, retrain=retrain, horizon=horizon,
                      preset=preset)  # fmt: skip
    typer.echo(f"backfill {start}..{end}: {counts}")
    return counts


def show_history(*, ticker: str | None, last: int, horizon: int | None = None) -> None:
    """Print the most recent matured live forecasts with their outcomes, newest first (no TensorFlow, no Prefect)."""
    with Repository.from_url(existing_database(Settings().db_url)) as repo:
        frame = repo.recent_outcomes(ticker, last=last, horizon=horizon).iloc[::-1]
    if frame.empty:
        typer.echo("no matured forecasts yet: `tsla-forecast latest` shows the newest forecast")
        return
    cols = ["ticker", "as_of", "target_date", "horizon", "point", "lo80", "hi80", "actual", "error", "naive_error",
            "direction_hit", "in80", "in95"]  # fmt: skip
    table = frame[[c for c in cols if c in frame.columns]].rename(columns={"direction_hit": "direction"})
    for column in ("direction", "in80", "in95"):
        if column in table.columns:
            table[column] = [_yes_no(v) for v in table[column]]
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


def _yes_no(value: object) -> str:
    return "-" if value is None or value != value else "yes" if float(value) else "no"  # type: ignore[arg-type]  # NaN


def latest_forecasts(*, ticker: str | None) -> list[dict]:
    """The newest stored live forecast of each ticker (every horizon, both bands), JSON-ready."""
    with Repository.from_url(existing_database(Settings().db_url)) as repo:
        frame = repo.latest_forecasts(ticker)
    out: dict[str, dict] = {}
    for row in frame.itertuples(index=False):
        head = {"ticker": row.ticker, "as_of": str(row.as_of.date()), "last_close": round(float(row.naive), 4),
                "run_id": int(row.run_id), "model_version_id": int(row.model_version_id), "forecasts": []}  # fmt: skip
        bands = {c: round(float(getattr(row, c)), 4) for c in ("point", "lo80", "hi80", "lo95", "hi95")}
        target = str(row.target_date.date())
        out.setdefault(row.ticker, head)["forecasts"].append({"horizon": int(row.horizon), "target_date": target}
                                                             | bands)  # fmt: skip
    return list(out.values())


def show_latest(*, ticker: str | None, as_json: bool) -> None:
    """Print :func:`latest_forecasts` as text or JSON."""
    latest = latest_forecasts(ticker=ticker)
    if as_json:
        typer.echo(json.dumps(latest, indent=2))
        return
    if not latest:
        typer.echo("no forecasts stored yet (run `tsla-forecast run`)")
        return
    for entry in latest:
        typer.echo(f"{entry['ticker']} forecast from {entry['as_of']} (close {entry['last_close']:.2f}; run "
                   f"{entry['run_id']}, model version {entry['model_version_id']})")  # fmt: skip
        for f in entry["forecasts"]:
            bands = f"80% [{f['lo80']:.2f}, {f['hi80']:.2f}]  95% [{f['lo95']:.2f}, {f['hi95']:.2f}]"
            typer.echo(f"  h={f['horizon']} {f['target_date']}  {f['point']:.2f}  {bands}")
