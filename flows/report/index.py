"""``<reports>/index.html``: the browsable archive, regenerated after every archived report.

One row per archived day and ticker, newest first: the verdict line, the live U2 and 80% coverage over the last 20
sessions, exactly as that day's report shows them (read from its ``summary.json``, so the index never disagrees with
the page it links to), and a relative link to the report. Above it, per ticker, the track-record figure over the whole
stored history. Self-contained: the figure is a data URI, there is no external URL.

Written to a temporary file and renamed into place under a lock file, so a reader always sees a whole index and two
reports finishing at once (two tickers) cannot drop each other's row.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from db.repository import Repository
from flows.report.render import _template, data_uri
from forecaster.plots import figures as plots

logger = logging.getLogger("flows.report")
INDEX_NAME = "index.html"
ALL_SESSIONS = 1_000_000  # "the whole history" for Repository.outcomes_until
FIGURE_CACHE = ".index-figures"  # each ticker's track-record figure, drawn once per archived report


def index_rows(reports_dir: Path) -> list[dict[str, Any]]:
    """One row per ``<day>/<TICKER>/summary.json`` in the archive, newest day first (then by ticker)."""
    rows = []
    for path in Path(reports_dir).glob("*/*/summary.json"):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # a foreign or damaged file must not hide the rest of the archive
            logger.warning("index: skipping %s: %s", path, exc)
            continue
        window = summary["skill"]["windows"][0]
        rows.append({"as_of": summary["as_of"], "ticker": summary["ticker"], "verdict": summary["skill"]["verdict"],
                     "u2": window["model"]["u2"], "coverage80": window["model"]["coverage80"], "n": window["n"],
                     "href": path.parent.relative_to(reports_dir).joinpath("report.html").as_posix()})  # fmt: skip
    rows.sort(key=lambda r: r["ticker"])
    rows.sort(key=lambda r: r["as_of"], reverse=True)
    return rows


def track_record_png(repo: Repository, ticker: str, as_of: dt.date) -> bytes:
    """The 1-session-ahead track record of ``ticker`` over every matured live forecast up to ``as_of``."""
    outcomes = repo.outcomes_until(ticker, as_of, sessions=ALL_SESSIONS)
    outcomes = outcomes.assign(model="Model") if len(outcomes) else outcomes
    return plots.png_bytes(plots.plot_track_record(outcomes, sessions=max(len(outcomes), 1)))


def cached_track_record(repo: Repository, reports_dir: Path, row: dict[str, Any]) -> bytes:
    """:func:`track_record_png` of the newest report ``row`` of a ticker, drawn once per archived report.

    Kept in ``<reports_dir>/.index-figures/<TICKER>.png`` under a key of the report's day and the modification time
    of its ``summary.json``: a new or rerun report redraws its own ticker only, so an index of N tickers costs one
    figure per report, not N (callers hold the index lock).
    """
    summary = reports_dir / Path(row["href"]).parent / "summary.json"
    key = f"{row['as_of']} {summary.stat().st_mtime_ns}"
    folder = reports_dir / FIGURE_CACHE
    png, stamp = folder / f"{row['ticker']}.png", folder / f"{row['ticker']}.key"
    if stamp.is_file() and png.is_file() and stamp.read_text(encoding="utf-8") == key:
        return png.read_bytes()
    data = track_record_png(repo, row["ticker"], dt.date.fromisoformat(row["as_of"]))
    folder.mkdir(exist_ok=True)
    png.write_bytes(data)
    stamp.write_text(key, encoding="utf-8")  # last: a process killed before this redraws next time
    return data


def render_index(rows: list[dict[str, Any]], figures: dict[str, str]) -> str:
    """The index page (``figures``: ticker -> image ``src``)."""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _template("index.html.j2").render(rows=rows, figures=figures, window=20, generated_at=generated)


def write_index(repo: Repository, reports_dir: Path) -> Path:
    """Regenerate ``<reports_dir>/index.html`` from the archive and the database; returns its path."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    with _locked(reports_dir / ".index.lock"):
        rows = index_rows(reports_dir)
        newest = {r["ticker"]: r for r in reversed(rows)}
        figures = {t: data_uri(cached_track_record(repo, reports_dir, row)) for t, row in sorted(newest.items())}
        target = reports_dir / INDEX_NAME
        _atomic_write(target, render_index(rows, figures))
    return target


def _atomic_write(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
