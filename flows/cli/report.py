"""The ``report`` command: rebuild a day's report from the database alone (no training, no Prefect, no network
other than SMTP when ``--email`` is given)."""

from __future__ import annotations

import datetime as dt

import typer

from db.repository import Repository
from flows.cli.common import existing_database
from flows.report.archive import email_message, make_report, record_delivery
from flows.report.mail import SmtpConfig, send_with_retries, serialize
from flows.settings import Settings


def report_command(*, ticker: str | None, as_of: dt.date | None, email: bool) -> int:
    """Archive the report of ``ticker``'s daily run on ``as_of`` (default: the latest) and optionally email it;
    ``ticker`` defaults to the first of the settings' tickers.

    Returns:
        0, or 1 when the email could not be delivered (the report is archived and the warning recorded either way).
    """
    settings = Settings()
    smtp = SmtpConfig.from_settings(settings) if email else None  # bad email settings fail before any work
    with Repository.from_url(existing_database(settings.db_url)) as repo:
        archived = make_report(repo, settings, ticker or settings.tickers[0], as_of)
        typer.echo(f"{archived.report.subject}\nreport: {archived.html_path}")
        if smtp is None:
            return 0
        raw = serialize(email_message(archived.report, settings))
        delivery = send_with_retries(raw, smtp, retries=settings.email_retries, delay=settings.email_retry_delay)
        warning = record_delivery(repo, archived, delivery, len(smtp.recipients))
    if warning:
        typer.echo(f"warning: {warning}", err=True)
        return 1
    typer.echo(f"emailed to {len(smtp.recipients)} recipient(s) via {smtp.address}")
    return 0
