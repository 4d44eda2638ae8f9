"""``daily-forecast``: the scheduled job. Thin Prefect flow and tasks over :func:`flows.pipeline.run_ticker`."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from prefect import flow, task, unmapped
from prefect.runtime import flow_run

from flows import artifacts
from flows.pipeline import JobParams, fetch_prices, resolve_as_of, run_ticker
from flows.settings import Settings

logger = logging.getLogger("flows.daily")


@task(name="fetch-prices", retries=2, retry_delay_seconds=[5, 30])
def fetch_bars(source: str, ticker: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Fetch bars from the price source (network I/O: the only step that retries)."""
    return fetch_prices(source, ticker, start, end)


@task(name="forecast-ticker")
def forecast_ticker(ticker: str, as_of: dt.date, source: str, retrain: str, horizon: int, preset: str,
                    kind: str = "daily") -> dict:  # fmt: skip
    """The whole daily job for one ticker (see :func:`flows.pipeline.run_ticker`)."""
    from db.repository import Repository

    settings = Settings()
    repo = Repository.from_url(settings.db_url)
    params = JobParams(ticker, as_of, source, retrain, horizon, preset, kind)
    fetch = fetch_bars.with_options(retries=settings.fetch_retries)
    try:
        return run_ticker(params, settings, repo, fetch=fetch, flow_run_id=_flow_run_id()).to_dict()
    finally:
        repo.dispose()


@flow(name="daily-forecast", log_prints=True)
def daily_forecast(
    tickers: list[str] = ["TSLA"],  # noqa: B006 - Prefect parameters must be plain JSON defaults
    as_of: dt.date | None = None,
    source: str = "yahoo",
    retrain: str = "auto",
    horizon: int = 5,
    preset: str = "default",
) -> list[dict]:
    """Fetch, validate, score, retrain or fine-tune, gate, forecast and store, for every ticker (mapped)."""
    day = resolve_as_of(as_of)
    if day is None:
        return []
    futures = forecast_ticker.map(tickers, unmapped(day), unmapped(source), unmapped(retrain), unmapped(horizon),
                                  unmapped(preset))  # fmt: skip
    results = [f.result() for f in futures]
    artifacts.publish_run_summary(results)
    report_step(results)
    return results


def report_step(results: list[dict]) -> None:
    """Render and deliver reports; the report issue fills this in. Until then it only says so."""
    logger.info("report step: not implemented yet (reports arrive with the report issue); %d result(s)", len(results))


def _flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None
