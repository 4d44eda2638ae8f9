"""Email delivery over SMTP (standard library ``smtplib``): the message, one attempt, and Prefect's retries of it.

The message is ``multipart/mixed``: an ``alternative`` of plain text and HTML (the figures inline as ``related``
``cid:`` images) plus attachments. Security is ``ssl`` (SMTPS), ``starttls`` or ``none``; the client logs in only
when a user is set. The password comes from ``TSLA_FORECAST_SMTP_PASSWORD`` or, when that is unset, from the
Prefect Secret block named by ``TSLA_FORECAST_SMTP_PASSWORD_BLOCK``. It is handed to ``SMTP.login`` only: never
logged, never put in an error message (error texts are scrubbed of it anyway).
"""

from __future__ import annotations

import email.policy
import functools
import logging
import re
import smtplib
import ssl
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from pydantic import SecretStr

from flows.retries import exception_of, retry_smtp, smtp_delays
from flows.settings import Settings
from forecaster.errors import ConfigError

logger = logging.getLogger("flows.email")


class DeliveryError(OSError):
    """The server accepted the connection but refused the message or some recipients."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send; ``repr`` never shows the password."""

    host: str
    port: int
    security: str
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """The SMTP settings; raises :class:`ConfigError` when there is nobody to send to."""
        if not settings.email_recipients:
            raise ConfigError("no email recipients: set TSLA_FORECAST_EMAIL_RECIPIENTS (a JSON list)")
        password = settings.smtp_password
        if password is None and settings.smtp_password_block:
            password = _secret_block(settings.smtp_password_block)
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.email_sender,
                   tuple(settings.email_recipients), settings.smtp_user, password, settings.smtp_timeout)  # fmt: skip

    @property
    def address(self) -> str:
        """``host:port (security)`` for log lines."""
        return f"{self.host}:{self.port} ({self.security})"


def _secret_block(name: str) -> SecretStr:
    """The value of a Prefect Secret block (loaded only when a block name is configured)."""
    from prefect.blocks.system import Secret

    secret: Any = Secret.load(name)  # a sync call in a sync context: the block itself, not a coroutine
    return SecretStr(str(secret.get()))


def content_id(name: str) -> str:
    """A unique Content-ID (without angle brackets) for an inline image; HTML refers to it as ``cid:<id>``."""
    return f"{name.replace('.', '-')}.{uuid.uuid4().hex[:12]}@tsla-forecast"


def build_message(
    *,
    subject: str,
    sender: str,
    recipients: Sequence[str],
    text: str,
    html: str,
    inline_images: Mapping[str, tuple[str, bytes]],
    attachments: Mapping[str, tuple[str, bytes]],
) -> EmailMessage:
    """A text + HTML message with inline PNGs and attachments.

    Args:
        inline_images: ``{content_id: (file_name, png_bytes)}``, referenced from ``html`` as ``cid:<content_id>``.
        attachments: ``{file_name: (mime_type, data)}``.
    """
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, sender, ", ".join(recipients)
    msg["Date"], msg["Message-ID"] = formatdate(localtime=False), make_msgid(domain="tsla-forecast")
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part: Any = msg.get_payload()[-1]  # type: ignore[index]  # the html alternative just added
    for cid, (name, png) in inline_images.items():
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", filename=name,
                              disposition="inline")  # fmt: skip
    for name, (mime, data) in attachments.items():
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def serialize(message: EmailMessage) -> bytes:
    """The message as SMTP wants it on the wire (CRLF line ends)."""
    return message.as_bytes(policy=email.policy.SMTP)


def send_message(message: bytes, smtp: SmtpConfig) -> None:
    """One delivery attempt of a serialised message; raises ``OSError`` (``SMTPException`` included) on failure."""
    message = re.sub(rb"(?<!\r)\n", b"\r\n", message)  # SMTP lines end in CRLF; bare LFs make one huge line
    context = ssl.create_default_context()
    if smtp.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.user:
            client.login(smtp.user, smtp.password.get_secret_value() if smtp.password else "")
        refused = client.sendmail(smtp.sender, list(smtp.recipients), message)
    if refused:
        total = len(smtp.recipients)
        raise DeliveryError(f"the server refused {len(refused)} of {total} recipient(s): {sorted(refused)}")


def describe(exc: BaseException, smtp: SmtpConfig | None = None) -> str:
    """``Type: message`` on one line, with the password (if any) masked."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    secret = smtp.password.get_secret_value() if smtp and smtp.password else ""
    return text.replace(secret, "***") if secret else text


@dataclass(frozen=True)
class Delivery:
    """The outcome of delivering one message."""

    ok: bool
    attempts: int
    error: str | None = None


def deliver(message: bytes, smtp: SmtpConfig) -> int:
    """One delivery attempt (run as a Prefect task, :func:`delivery_task`: Prefect retries it); returns the attempt
    number. A failure is logged and re-raised with the attempt number on it (``exc.attempt``)."""
    from prefect.runtime import task_run

    attempt = int(task_run.run_count or 1)
    try:
        send_message(message, smtp)
    except OSError as exc:
        exc.attempt = attempt  # type: ignore[attr-defined]
        logger.warning("email attempt %d via %s failed: %s", attempt, smtp.address, describe(exc, smtp))
        raise
    logger.info("email sent via %s to %d recipient(s)", smtp.address, len(smtp.recipients))
    return attempt


@functools.cache
def delivery_task() -> Any:
    """:func:`deliver` as a Prefect task, built on first use: building a report (``tsla-forecast report`` without
    ``--email``) never imports Prefect."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    return task(name="email-delivery", cache_policy=NO_CACHE, retry_condition_fn=retry_smtp)(deliver)


def send_with_retries(message: bytes, smtp: SmtpConfig, *, retries: int, delay: float) -> Delivery:
    """Deliver with Prefect's task retries: up to ``1 + retries`` attempts, ``delay``, ``2 x delay``, ... seconds
    apart, for transient failures only (:func:`flows.retries.retry_smtp`); never raises for delivery errors."""
    send = delivery_task().with_options(retries=retries, retry_delay_seconds=smtp_delays(retries, delay) or 0)
    state = send(message, smtp, return_state=True)
    if state.is_completed():
        return Delivery(True, int(state.result()))
    exc = exception_of(state)
    return Delivery(False, int(getattr(exc, "attempt", 1)), describe(exc, smtp) if exc else str(state.message))
