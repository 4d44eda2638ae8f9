"""Runs: start, fail and finish a run, edit its details, and the run reads of the lifecycle, reports and health."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.engine import begin_write
from db.errors import DatabaseError, RunNotRunningError
from db.frames import as_date
from db.repository.base import ReaderBase, WriterBase, runs_table
from db.schema import Run, utcnow

FINAL_STATUSES = ("succeeded", "failed", "skipped")


class DuplicateRunError(DatabaseError):
    """The database refused a second running (or succeeded) run of one daily/retrain key."""


class RunsUnitMixin(WriterBase):
    """Run writes of a :class:`db.repository.UnitOfWork`."""

    def finish_run(
        self,
        run_id: int,
        status: str = "succeeded",
        model_version_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Mark the run finished (``succeeded`` or ``skipped``) together with the run's other writes."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {FINAL_STATUSES}")
        values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
        if model_version_id is not None:
            values["model_version_id"] = model_version_id
        if details is not None:
            values["details"] = details
        # only a run still running may finish: one taken over meanwhile (its lock lost with a dropped connection)
        # must not also succeed, so its whole transaction rolls back
        update_run(self.conn, run_id, values, only_running=True)


class RunsMixin(ReaderBase):
    """Run reads and the run writes committed on their own, of a :class:`db.repository.Repository`."""

    def start_run(
        self,
        kind: str,
        ticker: str,
        as_of: dt.date,
        flow_run_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record a ``running`` run (committed at once, so it survives a failure) and return its id.

        Raises:
            DuplicateRunError: a daily/retrain run of this key is already running (the database refuses a second).
        """
        values = {
            "kind": kind, "ticker": ticker, "as_of": as_date(as_of), "flow_run_id": flow_run_id,
            "details": details, "status": "running", "started_at": utcnow(),
        }  # fmt: skip
        try:
            with begin_write(self.engine) as conn:
                return int(conn.execute(sa.insert(runs_table).values(values).returning(runs_table.c.id)).scalar_one())
        except sa.exc.IntegrityError:
            raise DuplicateRunError(f"a {kind} run of {ticker} {as_date(as_of)} is already running") from None

    def fail_run(self, run_id: int, error: str) -> None:
        """Mark the run ``failed`` with its error text (in its own transaction)."""
        with begin_write(self.engine) as conn:
            update_run(conn, run_id, {"status": "failed", "error": str(error), "finished_at": utcnow()})

    def find_run(self, kind: str, ticker: str, as_of: dt.date, status: str | None = "succeeded") -> Run | None:
        """The latest run of this kind, ticker and as-of day (with this status, unless ``status`` is None)."""
        query = sa.select(Run).where(Run.kind == kind, Run.ticker == ticker, Run.as_of == as_date(as_of))
        if status is not None:
            query = query.where(Run.status == status)
        with self._session() as session:
            return session.scalars(query.order_by(Run.id.desc()).limit(1)).first()

    def find_runs(self, kind: str, ticker: str, as_of: dt.date, status: str | None = "succeeded") -> list[Run]:
        """Every run of this kind, ticker and as-of day (with this status, unless ``status`` is None), newest first."""
        query = sa.select(Run).where(Run.kind == kind, Run.ticker == ticker, Run.as_of == as_date(as_of))
        if status is not None:
            query = query.where(Run.status == status)
        with self._session() as session:
            return list(session.scalars(query.order_by(Run.id.desc())))

    def run(self, run_id: int) -> Run | None:
        """One run by id."""
        with self._session() as session:
            return session.get(Run, run_id)

    def latest_run(self, kind: str, ticker: str, until: dt.date | None = None, status: str = "succeeded") -> Run | None:
        """The run of this kind and ticker with the newest as-of day (up to ``until``) and this status."""
        query = sa.select(Run).where(Run.kind == kind, Run.ticker == ticker, Run.status == status)
        if until is not None:
            query = query.where(Run.as_of <= as_date(until))
        with self._session() as session:
            return session.scalars(query.order_by(Run.as_of.desc(), Run.id.desc()).limit(1)).first()

    def recent_runs(self, kind: str, ticker: str, limit: int = 20) -> list[Run]:
        """The latest ``limit`` runs of this kind and ticker, any status, newest first (by id: start order)."""
        query = sa.select(Run).where(Run.kind == kind, Run.ticker == ticker).order_by(Run.id.desc()).limit(limit)
        with self._session() as session:
            return list(session.scalars(query))

    def runs_of_flow_run(self, flow_run_id: str, status: str | None = None) -> list[Run]:
        """The runs written by one Prefect flow run (with this status, unless None), oldest first."""
        query = sa.select(Run).where(Run.flow_run_id == flow_run_id)
        if status is not None:
            query = query.where(Run.status == status)
        with self._session() as session:
            return list(session.scalars(query.order_by(Run.id)))

    def merge_run_details(self, run_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into ``runs.details``; returns the new details."""
        return self._edit_run_details(run_id, lambda details: details | changes)

    def record_run_warning(self, run_id: int, text: str) -> list[str]:
        """Append ``text`` to ``runs.details["warnings"]`` (a repeated text is kept once); returns the warnings."""

        def append(details: dict[str, Any]) -> dict[str, Any]:
            return details | {"warnings": [w for w in details.get("warnings", []) if w != text] + [text]}

        return list(self._edit_run_details(run_id, append)["warnings"])

    def _edit_run_details(self, run_id: int, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read, edit and write ``runs.details`` in one locked transaction."""
        with begin_write(self.engine) as conn:
            query = sa.select(runs_table.c.details).where(runs_table.c.id == run_id).with_for_update()
            found = conn.execute(query).first()
            if found is None:
                raise ValueError(f"run {run_id} does not exist")
            details = edit(dict(found.details or {}))
            update_run(conn, run_id, {"details": details})
        return details


def update_run(conn: Connection, run_id: int, values: dict[str, Any], only_running: bool = False) -> None:
    """Update one run (only while it is ``running``, if asked); raises when it is missing or no longer running."""
    query = sa.update(runs_table).where(runs_table.c.id == run_id)
    if only_running:
        query = query.where(runs_table.c.status == "running")
    if conn.execute(query.values(values)).rowcount == 1:
        return
    status = conn.scalar(sa.select(runs_table.c.status).where(runs_table.c.id == run_id))
    if status is None:
        raise ValueError(f"run {run_id} does not exist")
    raise RunNotRunningError(f"run {run_id} is {status}, no longer running (taken over by another process?)")
