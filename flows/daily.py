"""``daily-forecast``: the scheduled job. Thin Prefect flow and tasks over :func:`flows.jobs.daily.run_ticker`."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run, task_run

from db.repository import Repository
from flows import alerts, artifacts
from flows.jobs import catchup
from flows.retries import FETCH_RETRY_DELAYS, final_bar_condition, retry_fetch, waits_for_final_bar
from flows.settings import Settings
from flows.tickers import Ticker
from forecaster.data.calendar import resolve_as_of
from forecaster.data.sources import is_live, parse_source

if TYPE_CHECKING:  # the job (scikit-learn, SciPy, the model) loads where a ticker runs, not where the flow runs
    import pandas as pd

    from flows.jobs.daily import JobParams

logger = logging.getLogger("flows.daily")
REPORTED = ("succeeded", "already_done")  # the statuses whose forecasts are stored, hence reported


@task(name="fetch-prices", retries=2, retry_delay_seconds=list(FETCH_RETRY_DELAYS), retry_condition_fn=retry_fetch)
def fetch_bars(source: str, ticker: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Fetch bars from the price source (network I/O); only a source that could not answer now is retried."""
    from flows.jobs.daily import fetch_prices

    return fetch_prices(source, ticker, start, end)


@task(name="forecast-ticker", cache_policy=NO_CACHE)  # never cached: no cache key to compute on every run
def forecast_ticker(ticker: str, as_of: dt.date, source: str | None = None, retrain: str | None = None,
                    horizon: int | None = None, preset: str | None = None, kind: str = "daily",
                    report: bool = False) -> dict:  # fmt: skip
    """The whole daily job for one ticker (see :func:`flows.jobs.daily.run_ticker`); None takes the setting.

    With ``report``, the ticker's report is made right after, in the same task (on the Dask worker that ran it):
    its outcome is the result's ``report`` (None when nothing was stored to report on).
    """
    from flows.jobs.daily import JobParams

    settings = Settings()
    params = JobParams.from_settings(settings, ticker, as_of, kind, source=source, retrain=retrain, horizon=horizon,
                                     preset=preset)  # fmt: skip
    result = _run(params, settings)
    if report:
        result["report"] = report_ticker(result) if result["status"] in REPORTED else None
    return result


def _run(params: JobParams, settings: Settings) -> dict:
    """:func:`run_ticker` on a repository of its own; a file or synthetic source is read directly, a live one
    through ``fetch-prices`` (Prefect retries what could not answer now)."""
    from flows.jobs.daily import fetch_prices, run_ticker

    live = is_live(parse_source(params.source))
    fetch = fetch_bars.with_options(retries=settings.fetch_retries) if live else fetch_prices
    with Repository.from_url(settings.db_url, artifact_retention=settings.artifact_retention) as repo:
        result = run_ticker(params, settings, repo, fetch=fetch, flow_run_id=_flow_run_id()).to_dict()
        attempt = int(task_run.run_count or 1)
        if attempt > 1 and result["status"] == "succeeded":  # earlier attempts found no final bar: say so on the run
            waited = f"attempt {attempt}: the first {attempt - 1} found no final bar for {params.as_of} yet"
            repo.merge_run_details(result["run_id"], {"final_bar_wait": waited})
            result["final_bar_wait"] = waited
        return result


def ticker_task(settings: Settings, source: str | None, scheduled: bool):
    """``forecast-ticker``, retried after ``final_bar_retry_delays`` when the final bar is missing, but only where
    waiting can help (:func:`flows.retries.waits_for_final_bar`); otherwise a missing bar fails at once."""
    delays = settings.final_bar_retry_delays
    if not delays or not waits_for_final_bar(source or settings.source, scheduled):
        return forecast_ticker.with_options(retries=0)
    return forecast_ticker.with_options(retries=len(delays), retry_delay_seconds=delays,
                                        retry_condition_fn=final_bar_condition(delays))  # fmt: skip


@flow(name="daily-forecast", log_prints=True, on_failure=[alerts.on_failure], on_crashed=[alerts.on_crashed])
def daily_forecast(
    tickers: list[Ticker] | None = None,
    as_of: dt.date | None = None,
    source: str | None = None,
    retrain: str | None = None,
    horizon: int | None = None,
    preset: str | None = None,
) -> list[dict]:
    """Fetch, validate, score, retrain or fine-tune, gate, forecast and store, for every ticker (mapped).

    A parameter left out (None) takes its value from :class:`~flows.settings.Settings` (``TSLA_FORECAST_*``). Left
    out, ``as_of`` is the session that has just closed (the scheduled run): only then does a live source's missing
    final bar get waited for. Sessions caught up before a failure keep their reports. With
    ``TSLA_FORECAST_REPORTS_ENABLED=false`` no ticker is reported, and the results hold no ``report``.
    """
    day = resolve_as_of(as_of)
    if day is None:
        return []
    settings = Settings()
    tickers = tickers or settings.tickers
    replay_one, run_one = ticker_task(settings, source, False), ticker_task(settings, source, as_of is None)
    report = settings.reports_enabled
    if not report and settings.email_enabled:
        get_run_logger().warning("TSLA_FORECAST_EMAIL_ENABLED is true but TSLA_FORECAST_REPORTS_ENABLED is false: "
                                 "no report is made, so none is emailed")  # fmt: skip
    # each caught-up session is reported by its own task, so a later failure leaves the earlier reports made
    caught = catchup.replay(catchup.find_missed(tickers, day),
                            lambda t, d: replay_one(t, d, source, retrain, horizon, preset, report=report))  # fmt: skip
    futures = run_one.map(tickers, unmapped(day), unmapped(source), unmapped(retrain), unmapped(horizon),
                          unmapped(preset), report=unmapped(report))  # fmt: skip
    results = [f.result() for f in futures]
    artifacts.publish_run_summary(caught + results)
    days = {t: [r["as_of"] for r in caught if r["ticker"] == t] for t in tickers}
    return [r | {"caught_up": days[r["ticker"]]} for r in results]


def report_ticker(result: dict) -> dict:
    """Archive, publish and (when enabled) email one ticker's report. Never raises: the forecast is already stored,
    so a report or delivery failure is logged and recorded as a warning on the run."""
    from flows.report.archive import already_emailed, make_report

    settings = Settings()
    ticker, as_of = result["ticker"], dt.date.fromisoformat(result["as_of"])
    outcome: dict = {"ticker": ticker, "as_of": result["as_of"], "report": None, "emailed": False, "warning": None}
    repo = None
    try:
        repo = Repository.from_url(settings.db_url)
        archived = make_report(repo, settings, ticker, as_of)
        outcome["report"] = str(archived.html_path)
        artifacts.publish_report(archived.report.summary, archived.html_path)
        if settings.email_enabled and not already_emailed(archived):
            outcome["warning"] = _email(repo, settings, archived)
            outcome["emailed"] = outcome["warning"] is None
    except Exception as exc:  # noqa: BLE001 - a report must never fail the stored forecast
        stage = "report" if outcome["report"] is None else "report delivery"
        outcome["warning"] = f"{stage} failed: {type(exc).__name__}: {exc}"
        get_run_logger().warning("%s %s: %s", ticker, as_of, outcome["warning"])
        if repo is not None and result.get("run_id"):
            _record_warning(repo, result["run_id"], outcome["warning"])
    finally:
        if repo is not None:
            repo.dispose()
    return outcome


def _email(repo, settings: Settings, archived) -> str | None:
    """Send the report (Prefect retries transient failures); returns the warning recorded on the run when it failed."""
    from flows.report.archive import email_message, record_delivery
    from flows.report.mail import SmtpConfig, send_with_retries, serialize

    smtp = SmtpConfig.from_settings(settings)  # a configuration error fails here, before any attempt
    raw = serialize(email_message(archived.report, settings))
    delivery = send_with_retries(raw, smtp, retries=settings.email_retries, delay=settings.email_retry_delay)
    warning = record_delivery(repo, archived, delivery, len(smtp.recipients))
    if warning:
        get_run_logger().warning("%s %s: %s", archived.report.ticker, archived.report.as_of, warning)
    return warning


def _record_warning(repo, run_id: int, text: str) -> None:
    try:
        repo.record_run_warning(run_id, text)
    except Exception:  # noqa: BLE001 - the database may be what failed
        logger.exception("could not record a warning on run %d", run_id)


def _flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None
