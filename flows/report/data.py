"""Everything a daily report shows, read from the database alone (no training, no price source, no model files)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from db.repository import Repository
from forecaster.data.calendar import is_session
from forecaster.errors import ForecasterError
from forecaster.policy import trail_counts

REPORT_SESSIONS = 120  # every figure and table looks back this many sessions
RUN_KIND = "daily"


class ReportError(ForecasterError):
    """No report can be built for the asked ticker and day (no such run, or its forecasts are missing)."""


@dataclass
class ReportInputs:
    """One ticker's report data as of one session."""

    ticker: str
    as_of: dt.date
    run: dict[str, Any]
    prices: pd.DataFrame  # the last REPORT_SESSIONS bars up to as_of
    forecast: pd.DataFrame  # forecaster.models.base.FORECAST_COLUMNS, one row per horizon
    outcomes: pd.DataFrame  # matured live LSTM forecasts whose target is in the last REPORT_SESSIONS sessions
    version: dict[str, Any]  # the model version whose forecasts were published
    parent: dict[str, Any] | None
    candidate: dict[str, Any] | None  # the version trained by this run (promoted or not)
    last_bar: dict[str, Any] | None  # date, source, fetched_at of the newest stored bar
    policy: dict[str, int]  # the policy's counts over the daily runs of the last REPORT_SESSIONS sessions


def load_report_inputs(repo: Repository, ticker: str, as_of: dt.date | None = None) -> ReportInputs:
    """The succeeded daily run of ``ticker`` on ``as_of`` (default: the latest) and what its report needs.

    Raises:
        ReportError: there is no such run, or it published no forecasts.
    """
    run = _find_run(repo, ticker, as_of)
    day = run.as_of
    version = repo.model_version(run.model_version_id) if run.model_version_id is not None else None
    if version is None:
        raise ReportError(f"daily run {run.id} of {ticker} on {day} names no model version")
    forecast = repo.run_forecasts(ticker, day, version.id)
    if forecast.empty:
        raise ReportError(f"daily run {run.id} of {ticker} on {day} has no stored forecasts")
    details = dict(run.details or {})
    candidate_id = details.get("candidate_version_id")
    start = day - dt.timedelta(days=2 * REPORT_SESSIONS)
    return ReportInputs(
        ticker=ticker,
        as_of=day,
        run={
            "id": run.id,
            "flow_run_id": run.flow_run_id,
            "status": run.status,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "details": details,
        },
        prices=repo.load_prices(ticker, start=start, end=day).tail(REPORT_SESSIONS),
        forecast=forecast,
        outcomes=repo.outcomes_until(ticker, day, sessions=REPORT_SESSIONS),
        version=_version(version) or {},
        parent=_version(repo.model_version(version.parent_id)) if version.parent_id else None,
        candidate=_version(repo.model_version(candidate_id)) if candidate_id else None,
        last_bar=repo.price_bar_info(ticker, day),
        policy=_policy_counts(repo, ticker, day),
    )


def _policy_counts(repo: Repository, ticker: str, day: dt.date) -> dict[str, int]:
    """Full retrains, fine-tunes, promotions, rejections (fallbacks) of the daily runs up to ``day``."""
    runs = [r for r in repo.recent_runs(RUN_KIND, ticker, limit=4 * REPORT_SESSIONS)
            if r.status == "succeeded" and r.as_of <= day][:REPORT_SESSIONS]  # fmt: skip
    trail = [{k: (r.details or {}).get(k) for k in ("trained", "gate", "fallback", "dropped")} for r in runs]
    return trail_counts(trail)


def _find_run(repo: Repository, ticker: str, as_of: dt.date | None):
    """The succeeded daily run, or a :class:`ReportError` that says what exists instead."""
    run = repo.latest_run(RUN_KIND, ticker) if as_of is None else repo.find_run(RUN_KIND, ticker, as_of)
    if run is not None:
        return run
    latest = repo.latest_run(RUN_KIND, ticker)
    if latest is None:
        raise ReportError(f"no succeeded daily run of {ticker} in the database yet: run `tsla-forecast run` first")
    failed = repo.find_run(RUN_KIND, ticker, as_of, status="failed") if as_of else None
    if failed is not None:
        why = f"its run failed: {failed.error}"
    else:
        why = "no daily run succeeded that day" if is_session(as_of) else "it is not an NYSE trading day"
    raise ReportError(f"no report for {ticker} on {as_of}: {why} (latest succeeded run: {latest.as_of})")


def _version(row) -> dict[str, Any] | None:
    """A model version row as a plain dict (or ``None``)."""
    if row is None:
        return None
    return {
        "id": row.id, "kind": row.kind, "parent_id": row.parent_id, "status": row.status, "preset": row.preset,
        "train_start": str(row.train_start), "train_end": str(row.train_end), "created_at": row.created_at,
        "metrics": dict(row.metrics or {}), "config": dict(row.config or {}),
    }  # fmt: skip
