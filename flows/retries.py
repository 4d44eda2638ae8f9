"""Every retry of the job in one place: Prefect task retries, each with a ``retry_condition_fn`` from here.

Only transient errors are retried: a source that cannot answer now (:class:`SourceUnavailableError`: network,
rate limit, an empty Yahoo answer), an SMTP server that is down or answers 4xx, and a late final bar, the last only
for a live source on a scheduled run (:func:`waits_for_final_bar`). A bad configuration, a missing or malformed
file and invalid prices are never retried: no retry can fix them, so they fail at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Sequence
from typing import Any

from forecaster.data.sources import SourceUnavailableError, is_live, parse_source
from forecaster.errors import FinalBarMissingError

logger = logging.getLogger("flows.retries")

FETCH_RETRY_DELAYS = (5.0, 30.0)  # seconds before the 2nd and 3rd price fetch (the last repeats if there are more)


def exception_of(state: Any) -> BaseException | None:
    """The exception a failed Prefect state holds (None when it holds none)."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data
    try:
        result = state.result(raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - a result that cannot be read: the exception is in the way
        return exc
    return result if isinstance(result, BaseException) else None


def is_transient_smtp(exc: BaseException | None) -> bool:
    """An SMTP failure that may pass: no connection, a dropped one, a timeout, or a 4xx answer."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    if isinstance(exc, smtplib.SMTPException):  # recipients refused, not supported, ...: the server said no
        return False
    return isinstance(exc, ConnectionError | TimeoutError) or type(exc) is OSError  # socket.gaierror is OSError


def retry_fetch(_task: object, _task_run: object, state: Any) -> bool:
    """``fetch-prices``: retry a source that could not answer now, never a bad file or bad prices."""
    return isinstance(exception_of(state), SourceUnavailableError)


def retry_smtp(_task: object, _task_run: object, state: Any) -> bool:
    """``email-delivery``: retry a transient SMTP failure only."""
    return is_transient_smtp(exception_of(state))


def smtp_delays(retries: int, delay: float) -> list[float]:
    """Gaps before each new email attempt: ``delay``, ``2 x delay``, ... (30, 60 and 90 s by default)."""
    return [delay * k for k in range(1, retries + 1)]


def waits_for_final_bar(source: str, scheduled: bool) -> bool:
    """A missing final bar is waited for only on a live source (Yahoo is sometimes late after the close) and only on
    a scheduled run, which forecasts the session that has just closed. A file never gets the bar: it fails at once."""
    return scheduled and is_live(parse_source(source))


def final_bar_condition(delays: Sequence[float]):
    """The ``forecast-ticker`` retry condition: retry a missing final bar and say, at WARNING level (so even under
    ``-q``), what the run waits for and until when."""

    def retry_final_bar(_task: object, task_run: Any, state: Any) -> bool:
        exc = exception_of(state)
        if not isinstance(exc, FinalBarMissingError):
            return False
        done = int(getattr(task_run, "run_count", 1) or 1)
        now = dt.datetime.now().astimezone()
        next_try = now + dt.timedelta(seconds=delays[min(done - 1, len(delays) - 1)])
        last_try = now + dt.timedelta(seconds=sum(delays[done - 1 :]))
        logger.warning("%s: waiting for it: attempt %d of %d at %s, the last at %s", exc, done + 1, len(delays) + 1,
                       f"{next_try:%H:%M:%S}", f"{last_try:%Y-%m-%d %H:%M:%S %Z}")  # fmt: skip
        return True

    return retry_final_bar
