"""Alert the team by email when a ``daily-forecast`` run fails or crashes.

**Why flow hooks, not a Prefect automation.** ``on_failure`` / ``on_crashed`` run inside the flow-run process,
reuse the report's SMTP settings and retries (:mod:`flows.report.mail`) and can read what the run wrote (the failed
``runs`` row: ticker, day, error) and its traceback (the step). An automation runs in the Prefect server instead and
would need its own email block and credentials, knowing nothing of our database.

**What hooks cannot see.** A hook only runs while the flow-run process is alive. If the worker or the machine dies,
or the run is never started (worker down, scheduler stopped), no hook fires and no email is sent. Both that and
"late by more than an hour" are covered by the health check ``tsla-forecast status`` (exit code 1 when the last
daily run failed or today's run is ``late_after_minutes`` past the close without a succeeded run), run from cron or a
monitoring system on another machine; see docs/operations.md. A Prefect automation can be added on top
(``automations.yaml`` in docs/operations.md) where the Prefect server is the place that must notice.

Alerts are off unless ``TSLA_FORECAST_ALERTS_ENABLED=true``; they go to ``alert_recipients`` (default: the report's
``email_recipients``). An alert that cannot be delivered is logged, never raised: the run is failed already.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from flows.settings import Settings

logger = logging.getLogger("flows.alerts")
STEP_MODULES = ("flows/jobs/", "flows/daily.py")  # the innermost frame from these names the failed step


@dataclass(frozen=True)
class Alert:
    """What went wrong in one flow run, for one ticker and day."""

    flow_run_name: str
    state: str  # Failed or Crashed
    ticker: str
    day: str
    step: str
    error: str
    link: str

    @property
    def subject(self) -> str:
        """``[tsla-forecast] FAILED: TSLA 2024-03-15 at load_prices``."""
        return f"[tsla-forecast] {self.state.upper()}: {self.ticker} {self.day} at {self.step}"

    @property
    def text(self) -> str:
        """The plain-text body: ticker, day, step, error line and the flow-run link."""
        return (
            f"The daily forecast run '{self.flow_run_name}' ended {self.state}.\n\n"
            f"ticker: {self.ticker}\nday:    {self.day}\nstep:   {self.step}\nerror:  {self.error}\n"
            f"flow run: {self.link}\n\n"
            "Nothing was stored for this day apart from its failed run row. Fix the cause, then rerun the day "
            "(`tsla-forecast run --as-of DAY`, or let tomorrow's run catch it up).\n"
        )


def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` hook of ``daily-forecast``."""
    notify(flow_run, state)


def on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_crashed`` hook (the process was interrupted but is still alive to report it)."""
    notify(flow_run, state)


def notify(flow_run: Any, state: Any, settings: Settings | None = None) -> list[Alert]:
    """Email one alert per failed ticker of ``flow_run``; never raises. Returns the alerts sent (or attempted)."""
    settings = settings or Settings()
    if not settings.alerts_enabled:
        return []
    try:
        alerts = build_alerts(flow_run, state, settings)
        for alert in alerts:
            send_alert(alert, settings)
        return alerts
    except Exception:  # noqa: BLE001 - an alert must never mask the run's own failure
        logger.exception("could not send the failure alert of flow run %s", getattr(flow_run, "id", "?"))
        return []


def build_alerts(flow_run: Any, state: Any, settings: Settings) -> list[Alert]:
    """The alerts of a failed flow run: one per failed ``runs`` row it wrote, else one from its parameters."""
    exc = _exception(state)
    error = _one_line(exc) if exc is not None else _one_line(state.message or state.name)
    step = _step(exc)
    link = _link(flow_run)
    common = {"flow_run_name": flow_run.name, "state": state.name, "step": step, "link": link}
    failed = _failed_rows(str(flow_run.id), settings)
    if failed:
        return [Alert(ticker=r.ticker, day=str(r.as_of), error=r.error or error, **common) for r in failed]
    params = dict(flow_run.parameters or {})
    tickers = ", ".join(params.get("tickers") or settings.tickers)
    day = str(params.get("as_of") or f"scheduled {_start_day(flow_run)}")
    return [Alert(ticker=tickers, day=day, error=error, **common)]


def send_alert(alert: Alert, settings: Settings) -> bool:
    """Deliver one alert through the report's SMTP settings, with its retries; False when it could not."""
    from flows.report.mail import SmtpConfig, build_message, send_with_retries, serialize

    recipients = settings.alert_recipients or settings.email_recipients
    smtp = SmtpConfig.from_settings(settings.model_copy(update={"email_recipients": recipients}))
    body = f"<pre>{html.escape(alert.text)}</pre>"
    message = build_message(subject=alert.subject, sender=settings.email_sender, recipients=recipients,
                            text=alert.text, html=body, inline_images={}, attachments={})  # fmt: skip
    delivery = send_with_retries(serialize(message), smtp, retries=settings.email_retries,
                                 delay=settings.email_retry_delay)  # fmt: skip
    if not delivery.ok:
        logger.error("alert %r not delivered: %s", alert.subject, delivery.error)
    return delivery.ok


def _exception(state: Any) -> BaseException | None:
    try:
        value = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - the result may not be retrievable (a crash)
        return None
    return value if isinstance(value, BaseException) else None


def _one_line(value: object) -> str:
    text = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else str(value)
    return " ".join(text.split())


def _step(exc: BaseException | None) -> str:
    """The innermost function of the job that raised (``load_prices``, ``train_candidate``, ...)."""
    if exc is None or exc.__traceback__ is None:
        return "unknown (no traceback: the process was interrupted)"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if any(m in f.filename for m in STEP_MODULES)]
    return frames[-1].name if frames else traceback.extract_tb(exc.__traceback__)[-1].name


def _link(flow_run: Any) -> str:
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=flow_run.id) or f"flow run {flow_run.id} (no Prefect UI URL configured)"


def _failed_rows(flow_run_id: str, settings: Settings) -> list[Any]:
    """The failed ``runs`` rows this flow run wrote (the database may be what failed: then none)."""
    from db.repository import Repository

    try:
        repo = Repository.from_url(settings.db_url)
    except Exception:  # noqa: BLE001
        logger.warning("alert: database not reachable; the alert names the run's parameters only")
        return []
    try:
        return repo.runs_of_flow_run(flow_run_id, status="failed")
    finally:
        repo.dispose()


def _start_day(flow_run: Any) -> str:
    start = getattr(flow_run, "expected_start_time", None) or dt.datetime.now(dt.UTC)
    return f"{start:%Y-%m-%d %H:%M} UTC"
