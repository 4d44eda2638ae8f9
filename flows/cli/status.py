"""``tsla-forecast status``: is the daily job healthy? One screen (or ``--json``), and an exit code for cron.

Per ticker: the last daily run (day, status, when), the champion (version, age in sessions since its full fit), the
live U2 and 80% coverage of the 1-session-ahead forecasts over the last 20 and 60 sessions, the last warning, and the
next scheduled ``daily-forecast`` run when a Prefect API answers. Reads the database only: no TensorFlow, no Prefect
(the Prefect REST API is asked over httpx, with a short timeout).

Unhealthy (exit code 1): the newest session a ticker's daily runs tried has only failed runs (a refused re-run of
an older day does not count), it has no succeeded run, or the last session that is due
has no succeeded run. A session is due ``late_after_minutes`` after its close (default 150: the 17:30 New York cron
plus an hour), so the check also catches a run that never started (a dead worker) or is more than an hour late.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from typing import Any

import pandas as pd

from db.repository import Repository
from flows.cli.common import existing_database
from flows.settings import Settings
from forecaster.data.calendar import last_completed_session, previous_session, session_close, sessions
from forecaster.evaluation import report_tables

RUN_KIND = "daily"
WINDOWS = (20, 60)
PREFECT_TIMEOUT_S = 2.0


def live_summary(frame: pd.DataFrame, windows: tuple[int, ...] = WINDOWS) -> dict[str, dict[str, float | int | None]]:
    """U2 vs naive and 80% coverage of the matured horizon-1 live forecasts over the last ``windows`` sessions.

    Args:
        frame: rows of the ``forecast_outcomes`` view (as from :meth:`Repository.outcomes_until`).

    Returns:
        ``{"20": {"n", "u2", "coverage80"}, "60": {...}}``; None where nothing has matured.
    """
    summary = {}
    for window in windows:
        scores = report_tables.skill_window(frame, window)
        model = scores["model"]
        summary[str(window)] = {
            "n": scores["n"],
            "u2": _finite(model["u2"]),
            "coverage80": _finite(model["coverage80"]),
        }
    return summary


def due_session(now: pd.Timestamp, late_after_minutes: int) -> dt.date:
    """The newest session whose daily run should have succeeded by ``now``."""
    day = last_completed_session(now)
    if now < session_close(day) + pd.Timedelta(minutes=late_after_minutes):
        day = previous_session(day)
    return day.date()


def ticker_status(repo: Repository, ticker: str, now: pd.Timestamp, settings: Settings) -> dict[str, Any]:
    """What ``status`` shows for one ticker, with the ``problems`` that make it unhealthy."""
    runs = repo.recent_runs(RUN_KIND, ticker, limit=50)
    last = runs[0] if runs else None
    ok = repo.latest_run(RUN_KIND, ticker)
    due = due_session(now, settings.late_after_minutes)
    behind = len(sessions(ok.as_of + dt.timedelta(days=1), due)) if ok else None
    problems = []
    newest = newest_session_failure(runs, ok)
    if newest is not None:
        problems.append(f"{ticker}: the daily run of its newest session ({newest.as_of}) failed: {newest.error}")
    if ok is None:
        problems.append(f"{ticker}: no succeeded daily run yet")
    elif behind:
        problems.append(f"{ticker}: {behind} session(s) behind: the last succeeded run is {ok.as_of}, {due} is due")
    outcomes = repo.outcomes_until(ticker, due, sessions=max(WINDOWS) + 10)
    return {
        "ticker": ticker,
        "last_run": _run(last),
        "last_succeeded": None if ok is None else str(ok.as_of),
        "due_session": str(due),
        "sessions_behind": behind,
        "champion": _champion(repo, ticker, due),
        "live": live_summary(outcomes),
        "last_warning": _last_warning(runs),
        "problems": problems,
    }


def newest_session_failure(runs: list, ok) -> Any:
    """The failed run of the newest session tried, when that session has no succeeded run; else None.

    Health follows the newest session, not the last attempt: a refused re-run of an older day, or a failed attempt
    of a day that later succeeded, says nothing about the job.
    """
    if not runs or (ok is not None and ok.as_of >= max(r.as_of for r in runs)):
        return None
    newest = max(r.as_of for r in runs)
    failed = [r for r in runs if r.as_of == newest and r.status == "failed"]
    return failed[0] if failed else None


def collect_status(settings: Settings, now: pd.Timestamp | None = None) -> dict[str, Any]:
    """The whole status: every configured ticker, the next scheduled run and the verdict."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    repo = Repository.from_url(existing_database(settings.db_url))
    try:
        tickers = [ticker_status(repo, t, now, settings) for t in settings.tickers]
    finally:
        repo.dispose()
    problems = [p for t in tickers for p in t["problems"]]
    return {"checked_at": now.isoformat(timespec="seconds"), "healthy": not problems, "problems": problems,
            "next_scheduled_run": next_scheduled_run(), "tickers": tickers}  # fmt: skip


def next_scheduled_run(api_url: str | None = None, timeout: float = PREFECT_TIMEOUT_S) -> str | None:
    """Expected start of the next scheduled ``daily-forecast`` run from the Prefect REST API; None if unknown."""
    api_url = api_url or os.environ.get("PREFECT_API_URL")
    if not api_url:
        return None
    import httpx

    body = {"flows": {"name": {"any_": ["daily-forecast"]}}, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "sort": "EXPECTED_START_TIME_ASC", "limit": 1}  # fmt: skip
    try:
        response = httpx.post(f"{api_url.rstrip('/')}/flow_runs/filter", json=body, timeout=timeout)
        response.raise_for_status()
        runs = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return runs[0]["expected_start_time"] if runs else "none scheduled"


def render(status: dict[str, Any]) -> str:
    """The one-screen text."""
    verdict = "HEALTHY" if status["healthy"] else "UNHEALTHY"
    lines = [f"tsla-forecast status at {status['checked_at']}: {verdict}", ""]
    for t in status["tickers"]:
        lines += [f"{t['ticker']}", *(f"  {k:<10}{v}" for k, v in _ticker_lines(t)), ""]
    lines.append(f"next scheduled daily run: {status['next_scheduled_run'] or 'n/a (no Prefect API reachable)'}")
    lines += [f"problem: {p}" for p in status["problems"]]
    return "\n".join(lines)


def status_command(*, as_json: bool) -> int:
    """Print the status; 0 when healthy, 1 when not."""
    import typer

    status = collect_status(Settings())
    typer.echo(json.dumps(status, indent=2) if as_json else render(status))
    return 0 if status["healthy"] else 1


def _ticker_lines(t: dict[str, Any]) -> list[tuple[str, str]]:
    run, champ, live = t["last_run"], t["champion"], t["live"]
    run_text = (
        "none" if run is None else f"{run['as_of']} {run['status']} (at {run['finished_at'] or run['started_at']})"
    )
    behind = "" if t["sessions_behind"] is None else f"; {t['sessions_behind']} behind (due: {t['due_session']})"
    champ_text = "none" if champ is None else (
        f"version {champ['id']} ({champ['kind']}), full fit on {champ['full_fit_as_of']}, "
        f"{champ['age_sessions']} sessions old"
    )  # fmt: skip
    live_text = "   ".join(
        f"last {w}: U2 {_num(v['u2'])}, 80% coverage {_pct(v['coverage80'])} (n {v['n']})" for w, v in live.items()
    )
    warning = t["last_warning"]
    return [("last run", run_text + behind), ("champion", champ_text), ("live", live_text),
            ("warning", "none" if warning is None else f"{warning['as_of']}: {warning['text']}")]  # fmt: skip


def _run(run) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"id": run.id, "as_of": str(run.as_of), "status": run.status, "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at), "error": run.error}  # fmt: skip


def _champion(repo: Repository, ticker: str, due: dt.date) -> dict[str, Any] | None:
    row = repo.champion(ticker)
    if row is None:
        return None
    full_fit = dt.date.fromisoformat(str((row.config or {}).get("full_fit_as_of", row.train_end)))
    return {"id": row.id, "kind": row.kind, "full_fit_as_of": str(full_fit),
            "age_sessions": max(len(sessions(full_fit, due)) - 1, 0)}  # fmt: skip


def _last_warning(runs) -> dict[str, str] | None:
    for run in runs:
        warnings = (run.details or {}).get("warnings") or []
        if warnings:
            return {"as_of": str(run.as_of), "text": warnings[-1]}
    return None


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"
