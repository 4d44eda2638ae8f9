"""One run lifecycle for the daily, retrain and backtest jobs: lock, find done, take over, start, commit, fail.

``with tracked_run(repo, key, ...) as run:`` does, once for every job:

1. takes the key's run lock (:mod:`db.locks`: a PostgreSQL advisory lock or an ``fcntl`` lock file beside the
   SQLite database; both die with their process), waiting at most ``lock_timeout`` seconds for a live run of the
   same key, then failing with one line that names that run;
2. finds a succeeded run of the key: ``run.done`` is set and the job returns it as ``already_done``;
3. takes over: a ``running`` row of the key whose lock was free belongs to a dead process, so it is marked
   failed ("interrupted ...");
4. starts the run (a ``running`` row) and yields; the job writes everything inside one ``repo.transaction()``
   and calls ``run.commit(tx, RunOutcome(...))`` there;
5. on any exception: marks the row ``failed`` with the error line (never raising itself) and re-raises.

The lock is held from step 1 until the run has committed or failed, so two runs of one key never overlap. A run
writes no file that outlives it: model artefacts go into the database in the run's one transaction
(:mod:`flows.jobs.bundles`), so a killed run leaves nothing to sweep.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from db.errors import DatabaseError
from db.locks import RunLockTimeoutError
from db.repository import Repository, UnitOfWork
from db.schema import Run
from flows.settings import Settings

logger = logging.getLogger("flows.jobs.lifecycle")
INTERRUPTED = "interrupted: the process stopped before the run finished; taken over by a rerun"


@dataclass(frozen=True)
class RunKey:
    """What makes two runs the same run: (kind, ticker, as-of session), plus a backtest's parameters."""

    kind: str
    ticker: str
    as_of: dt.date
    params: dict[str, Any] | None = None  # backtests: several per (ticker, end) differ by their parameters

    @property
    def name(self) -> str:
        """The lock name."""
        base = f"{self.kind}-{self.ticker}-{self.as_of:%Y%m%d}"
        if self.params is None:
            return base
        digest = hashlib.sha256(json.dumps(self.params, sort_keys=True, default=str).encode()).hexdigest()
        return f"{base}-{digest[:12]}"

    def matches(self, run: Run) -> bool:
        """Whether a stored run of this (kind, ticker, as_of) is a run of this key."""
        return self.params is None or (run.details or {}).get("params") == self.params

    def __str__(self) -> str:
        return f"{self.kind} run of {self.ticker} {self.as_of}"


@dataclass(frozen=True)
class RunOutcome:
    """What a succeeded run records on its row: the model version it used and its details."""

    model_version_id: int | None
    details: dict[str, Any] = field(default_factory=dict)


class TrackedRun:
    """The handle ``tracked_run`` yields: the run id, or ``done`` (the succeeded run of the key)."""

    def __init__(self, repo: Repository, key: RunKey, done: Run | None = None,
                 details: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.repo, self.key, self.done = repo, key, done
        self.details = dict(details or {})  # what the run recorded when it started
        self.id: int | None = None

    def commit(self, tx: UnitOfWork, outcome: RunOutcome) -> None:
        """Mark the run succeeded inside the transaction ``tx`` that holds its other writes; its details are those
        it started with (its parameters) plus the outcome's."""
        if self.id is None:
            raise RuntimeError(f"{self.key} has not started")
        details = self.details | outcome.details
        tx.finish_run(self.id, "succeeded", model_version_id=outcome.model_version_id, details=details)


@contextmanager
def tracked_run(repo: Repository, key: RunKey, settings: Settings, *, details: dict[str, Any],
                flow_run_id: str | None = None) -> Iterator[TrackedRun]:  # fmt: skip
    """The lifecycle of one run of ``key`` (see the module docstring); ``settings.run_lock_timeout`` bounds the wait."""
    with _locked(repo, key, settings.run_lock_timeout):
        done = next((r for r in repo.find_runs(key.kind, key.ticker, key.as_of) if key.matches(r)), None)
        if done is not None:
            logger.info("%s already succeeded (run %d): nothing to do", key, done.id)
            yield TrackedRun(repo, key, done)
            return
        _take_over(repo, key)
        run = TrackedRun(repo, key, details=details)
        run.id = repo.start_run(key.kind, key.ticker, key.as_of, flow_run_id, details=details)
        try:
            yield run
        except BaseException as exc:
            record_failure(repo, run.id, exc)
            raise


@contextmanager
def _locked(repo: Repository, key: RunKey, timeout: float) -> Iterator[None]:
    """Hold the key's lock; a timeout becomes one line naming the live run that holds it."""
    with ExitStack() as stack:
        try:
            stack.enter_context(repo.run_lock(key.name, timeout))
        except RunLockTimeoutError:
            raise RunLockTimeoutError(_still_running(repo, key, timeout)) from None
        yield


def _still_running(repo: Repository, key: RunKey, timeout: float) -> str:
    live = next((r for r in repo.find_runs(key.kind, key.ticker, key.as_of, "running") if key.matches(r)), None)
    which = "another process" if live is None else (
        f"run {live.id} (started {live.started_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f", flow run {live.flow_run_id})" if live.flow_run_id else ")")
    )  # fmt: skip
    return f"{key} is in progress in {which}: waited {timeout:g}s (run_lock_timeout); try again when it has finished"


def _take_over(repo: Repository, key: RunKey) -> None:
    """Runs of ``key`` still marked running while we hold its lock died (the lock died with them): mark them
    failed. They wrote nothing else that lasts: their one transaction never committed."""
    for stale in repo.find_runs(key.kind, key.ticker, key.as_of, status="running"):
        if key.matches(stale):
            logger.warning("%s: run %d was interrupted; taking it over", key, stale.id)
            repo.fail_run(stale.id, INTERRUPTED)


def record_failure(repo: Repository, run_id: int, exc: BaseException) -> None:
    """Mark ``run_id`` failed with the error's first line; never raises (the database may be what failed).

    When the database itself is unreachable the row stays ``running``; its lock died with the connection, so the
    next run of the key takes it over and marks it failed (step 3 of the module docstring).
    """
    line = (str(exc).strip().splitlines() or [""])[0]
    try:
        repo.fail_run(run_id, f"{type(exc).__name__}: {line}")
    except DatabaseError as err:
        logger.warning("could not mark run %d failed (%s); the next run of its key will", run_id, err)
    except Exception:  # noqa: BLE001 - the database may be the thing that failed
        logger.exception("could not record the failure of run %d", run_id)
