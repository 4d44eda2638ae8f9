"""``daily-forecast``: the scheduled job. Thin Prefect flow and tasks over :func:`flows.jobs.daily.run_ticker`."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from prefect import flow, get_run_logger, task, unmapped
from prefect.runtime import flow_run, task_run
from prefect.states import State

from db.repository import Repository
from flows import alerts, artifacts
from flows.jobs import catchup
from flows.jobs.daily import JobParams, fetch_prices, resolve_as_of, run_ticker
from flows.settings import Settings
from forecaster.errors import FinalBarMissingError

logger = logging.getLogger("flows.daily")


@task(name="fetch-prices", retries=2, retry_delay_seconds=[5, 30])
def fetch_bars(source: str, ticker: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Fetch bars from the price source (network I/O: the only step that retries)."""
    return fetch_prices(source, ticker, start, end)


def _final_bar_missing(_task: object, _task_run: object, state: State) -> bool:
    """Retry condition of ``forecast-ticker``: only a final bar that the source does not have yet is retried."""
    return isinstance(state.data, FinalBarMissingError)


@task(name="forecast-ticker")
def forecast_ticker(ticker: str, as_of: dt.date, source: str | None = None, retrain: str | None = None,
                    horizon: int | None = None, preset: str | None = None, kind: str = "daily") -> dict:  # fmt: skip
    """The whole daily job for one ticker (see :func:`flows.jobs.daily.run_ticker`); None takes the setting."""
    settings = Settings()
    params = JobParams.from_settings(settings, ticker, as_of, kind, source=source, retrain=retrain, horizon=horizon,
                                     preset=preset)  # fmt: skip
    fetch = fetch_bars.with_options(retries=settings.fetch_retries)
    with Repository.from_url(settings.db_url, artifact_retention=settings.artifact_retention) as repo:
        result = run_ticker(params, settings, repo, fetch=fetch, flow_run_id=_flow_run_id()).to_dict()
        attempt = int(task_run.run_count or 1)
        if attempt > 1 and result["status"] == "succeeded":  # earlier attempts found no final bar: say so on the run
            waited = f"attempt {attempt}: the first {attempt - 1} found no final bar for {as_of} yet"
            repo.merge_run_details(result["run_id"], {"final_bar_wait": waited})
            result["final_bar_wait"] = waited
        return result


def _ticker_task(settings: Settings):
    """``forecast-ticker`` with the late-final-bar retries of the settings (read when the flow runs)."""
    delays = settings.final_bar_retry_delays
    return forecast_ticker.with_options(retries=len(delays), retry_delay_seconds=delays or 0,
                                        retry_condition_fn=_final_bar_missing)  # fmt: skip


@flow(name="daily-forecast", log_prints=True, on_failure=[alerts.on_failure], on_crashed=[alerts.on_crashed])
def daily_forecast(
    tickers: list[str] | None = None,
    as_of: dt.date | None = None,
    source: str | None = None,
    retrain: str | None = None,
    horizon: int | None = None,
    preset: str | None = None,
) -> list[dict]:
    """Fetch, validate, score, retrain or fine-tune, gate, forecast and store, for every ticker (mapped).

    A parameter left out (None) takes its value from :class:`~flows.settings.Settings` (``TSLA_FORECAST_*``).
    """
    day = resolve_as_of(as_of)
    if day is None:
        return []
    settings = Settings()
    tickers, run_one = tickers or settings.tickers, _ticker_task(settings)
    caught = catchup.replay(catchup.find_missed(tickers, day),
                            lambda t, d: run_one(t, d, source, retrain, horizon, preset))  # fmt: skip
    futures = run_one.map(tickers, unmapped(day), unmapped(source), unmapped(retrain), unmapped(horizon),
                                  unmapped(preset))  # fmt: skip
    results = [f.result() for f in futures]
    artifacts.publish_run_summary(caught + results)
    reports = {(r["ticker"], r["as_of"]): r for r in report_step(caught + results)}
    days = {t: [r["as_of"] for r in caught if r["ticker"] == t] for t in tickers}
    return [r | {"report": reports.get((r["ticker"], r["as_of"])), "caught_up": days[r["ticker"]]} for r in results]


def report_step(results: list[dict]) -> list[dict]:
    """A report per ticker whose forecasts are stored (archive, artifacts, email); a failure is only a warning."""
    return [report_ticker(r) for r in results if r["status"] in ("succeeded", "already_done")]


@task(name="report-ticker")
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


@task(name="email-report")
def email_report(message: bytes) -> int:
    """One SMTP delivery attempt (network I/O: Prefect retries it); returns the attempt number. The password is
    read here, from the settings, so that it never travels as a task parameter."""
    from flows.report.mail import SmtpConfig, send_message

    send_message(message, SmtpConfig.from_settings(Settings()))
    return int(task_run.run_count or 1)


def _email(repo, settings: Settings, archived) -> str | None:
    """Send the report with Prefect retries; returns the warning recorded on the run when delivery failed."""
    from flows.report.archive import email_message, record_delivery
    from flows.report.mail import Delivery, SmtpConfig, describe, serialize

    smtp = SmtpConfig.from_settings(settings)  # a configuration error fails here, before any attempt
    raw = serialize(email_message(archived.report, settings))
    send = email_report.with_options(retries=settings.email_retries, retry_delay_seconds=settings.email_retry_delay)
    state = send(raw, return_state=True)
    if state.is_completed():
        delivery = Delivery(True, state.result())
    else:
        delivery = Delivery(False, settings.email_retries + 1, describe(state.result(raise_on_failure=False), smtp))
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
