"""Render and deliver a daily report: the archive folder, the email message and what delivery records on the run.

The archive is ``<reports home>/<YYYY-MM-DD>/<TICKER>/`` holding ``report.html`` (self-contained), ``summary.json``
and every figure as PNG. It is written to a temporary sibling folder and then swapped into place, so a rerun of the
same day replaces it atomically and a killed process never leaves a half-written report. Every archived report also
regenerates ``<reports home>/index.html`` (:mod:`flows.report.index`). Prefect-free: the flow
tasks live in :mod:`flows.daily`, the command in :mod:`flows.cli.report`.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from db.repository import Repository
from flows.report.data import ReportInputs, load_report_inputs
from flows.report.index import write_index
from flows.report.mail import Delivery, build_message, content_id
from flows.report.render import Report, build_report
from flows.settings import Settings

logger = logging.getLogger("flows.report")
STALE_TEMP_S = 3600  # temporary folders older than this are leftovers of a killed process
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


@dataclass
class ArchivedReport:
    """A report written to its archive folder, with the run it belongs to."""

    report: Report
    path: Path
    run_id: int
    run_details: dict

    @property
    def html_path(self) -> Path:
        """The archived ``report.html``."""
        return self.path / "report.html"


def make_report(repo: Repository, settings: Settings, ticker: str, as_of: dt.date | None = None) -> ArchivedReport:
    """Build the report of ``ticker``'s daily run on ``as_of`` (default: the latest) from the database; archive it."""
    inputs: ReportInputs = load_report_inputs(repo, ticker, as_of)
    report = build_report(inputs, drift_u2=settings.drift_u2)
    path = write_archive(report, settings.reports_dir)
    logger.info("%s %s: report archived in %s", ticker, inputs.as_of, path)
    write_index(repo, settings.reports_dir)
    return ArchivedReport(report, path, inputs.run["id"], inputs.run["details"])


def archive_dir(reports_dir: Path, as_of: dt.date, ticker: str) -> Path:
    """``<reports_dir>/<YYYY-MM-DD>/<TICKER>``."""
    return Path(reports_dir) / f"{as_of:%Y-%m-%d}" / ticker


def write_archive(report: Report, reports_dir: Path) -> Path:
    """Write ``report.html``, ``summary.json`` and the PNGs to a temporary folder, then swap it into place."""
    target = archive_dir(reports_dir, report.as_of, report.ticker)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name, png in report.figures.items():
            (tmp / name).write_bytes(png)
        (tmp / "summary.json").write_text(report.summary_json(), encoding="utf-8")
        (tmp / "report.html").write_text(report.html(), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def replace_dir(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target``: readers see the old folder or the new one, never a mix.

    Linux swaps the two atomically (``renameat2(RENAME_EXCHANGE)``); elsewhere the old folder is renamed aside
    first, so for an instant there is no folder at all, but never a partial one.
    """
    if not target.exists():
        try:
            os.rename(new, target)
            return
        except OSError as exc:  # created meanwhile by a concurrent writer: swap instead
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if _exchange(new, target):
        shutil.rmtree(new)  # now holds the previous report
        return
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, aside)
    os.rename(new, target)
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2``; False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _sweep_leftovers(target: Path) -> None:
    """Remove temporary folders of ``target`` left behind by a killed process (older than an hour)."""
    now = time.time()
    for leftover in target.parent.glob(f".{target.name}.*-*"):
        if leftover.is_dir() and now - leftover.stat().st_mtime > STALE_TEMP_S:
            shutil.rmtree(leftover, ignore_errors=True)


def email_message(report: Report, settings: Settings) -> EmailMessage:
    """The report as an email: text and HTML with the figures inline (``cid:``), ``summary.json`` attached."""
    cids = {name: content_id(name) for name in report.figures}
    html = report.html({name: f"cid:{cid}" for name, cid in cids.items()})
    return build_message(
        subject=report.subject,
        sender=settings.email_sender,
        recipients=settings.email_recipients,
        text=report.text,
        html=html,
        inline_images={cids[name]: (name, png) for name, png in report.figures.items()},
        attachments={"summary.json": ("application/json", report.summary_json().encode("utf-8"))},
    )


def already_emailed(archived: ArchivedReport) -> bool:
    """Whether this run's report was emailed before (a rerun of the same day does not send it again)."""
    return bool(archived.run_details.get("email", {}).get("sent_at"))


def record_delivery(repo: Repository, archived: ArchivedReport, delivery: Delivery, recipients: int) -> str | None:
    """Note a sent email in the run's details, or record a failed one as a warning on the run; returns the warning."""
    if delivery.ok:
        sent = {"sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "recipients": recipients,
                "attempts": delivery.attempts, "subject": archived.report.subject}  # fmt: skip
        repo.merge_run_details(archived.run_id, {"email": sent})
        return None
    warning = f"email delivery failed after {delivery.attempts} attempt(s): {delivery.error}"
    logger.warning("%s %s: %s", archived.report.ticker, archived.report.as_of, warning)
    repo.record_run_warning(archived.run_id, warning)
    return warning
