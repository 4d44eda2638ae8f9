"""The only module that writes SQL: runs, prices, model versions, forecasts and metrics, plus read helpers.

Writes of one run happen in one transaction (:meth:`Repository.transaction` yields a :class:`UnitOfWork`).
Prices and forecasts are idempotent ``INSERT ... ON CONFLICT DO UPDATE`` upserts on both SQLite and
PostgreSQL that only touch a row when its values changed, so re-running a run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from db.engine import begin_write, check_connection, database_url, make_engine, rolled_back
from db.errors import DatabaseError, RunNotRunningError
from db.frames import as_date, outcome_frame, require_columns, to_dates, to_float, to_floats
from db.locks import hold_lock
from db.migrate import ensure_schema_current
from db.schema import (
    FORECAST_KEY,
    MODEL_KINDS,
    Base,
    Forecast,
    Metric,
    ModelArtifact,
    ModelVersion,
    Price,
    PriceRevision,
    Run,
    forecast_outcomes,
    utcnow,
)


class DuplicateRunError(DatabaseError):
    """The database refused a second running (or succeeded) run of one daily/retrain key."""


PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
FORECAST_FRAME_COLUMNS = ("as_of", "horizon", "target_date", "naive", "point", "lo80", "hi80", "lo95", "hi95")
FINAL_STATUSES = ("succeeded", "failed", "skipped")
CHUNK_ROWS = 5000  # rows per executemany call; SQLAlchemy pages each into multi-row VALUES within driver limits

_prices = Base.metadata.tables[Price.__tablename__]
_forecasts = Base.metadata.tables[Forecast.__tablename__]
_metrics = Base.metadata.tables[Metric.__tablename__]
_runs = Base.metadata.tables[Run.__tablename__]
_versions = Base.metadata.tables[ModelVersion.__tablename__]
_artifacts = Base.metadata.tables[ModelArtifact.__tablename__]
_revisions = Base.metadata.tables[PriceRevision.__tablename__]


@dataclass(frozen=True)
class NewModelVersion:
    """A trained model to register: lineage (``parent_id``), data span, config, metrics and artefact."""

    ticker: str
    kind: str
    parent_id: int | None
    preset: str
    config: dict[str, Any]
    train_start: dt.date
    train_end: dt.date
    metrics: dict[str, Any]
    artifact_path: str
    artifact_sha256: str
    status: str = "candidate"


class UnitOfWork:
    """The writes of one run, inside one database transaction (see :meth:`Repository.transaction`)."""

    def __init__(self, conn: Connection, artifact_retention: int | None = None) -> None:
        self.conn = conn
        self.artifact_retention = artifact_retention

    def upsert_prices(self, ticker: str, frame: pd.DataFrame, source: str) -> int:
        """Insert or update daily bars (``DatetimeIndex`` named ``date``; float open, high, low, close, volume).

        Returns:
            The number of rows inserted or changed; rewriting identical bars returns 0.
        """
        require_columns(frame, PRICE_COLUMNS, "price frame")
        fetched_at = utcnow()
        values = {c: to_floats(frame[c]) for c in PRICE_COLUMNS}
        rows = [
            {"ticker": ticker, "date": day, "source": source, "fetched_at": fetched_at}
            | {c: values[c][i] for c in PRICE_COLUMNS}
            for i, day in enumerate(to_dates(frame.index))
        ]
        return _upsert(self.conn, _prices, rows, ("ticker", "date"), PRICE_COLUMNS, ("source", "fetched_at"))

    def write_prices(self, ticker: str, frame: pd.DataFrame, source: str, revisions: Sequence[Any] = ()) -> int:
        """Store fetched bars: upsert them, or, when the source restated history (``revisions``, see
        :func:`forecaster.data.revisions.price_revisions`), replace every stored bar with ``frame`` and bring the
        forecasts made on restated dates into the new units. Returns the price rows written."""
        if not revisions:
            return self.upsert_prices(ticker, frame, source)
        written = self.replace_prices(ticker, frame, source)
        self.restate_forecasts(ticker, revisions)
        return written

    def replace_prices(self, ticker: str, frame: pd.DataFrame, source: str) -> int:
        """Replace every stored bar of ``ticker`` with ``frame`` (restated history); returns the rows written."""
        self.conn.execute(sa.delete(_prices).where(_prices.c.ticker == ticker))
        return self.upsert_prices(ticker, frame, source)

    def restate_forecasts(self, ticker: str, revisions: Sequence[Any]) -> int:
        """Multiply the point, intervals and naive of ``ticker``'s forecasts made on each revision's dates by its
        ratio, so that they compare with the restated closes in the same units; returns the rows changed.

        ``revisions`` are :class:`forecaster.data.revisions.PriceRevision`-like (``first_date``, ``last_date``,
        ``ratio``).
        """
        f = _forecasts.c
        changed = 0
        for r in revisions:
            scaled = {c: f[c] * float(r.ratio) for c in ("point", "lo80", "hi80", "lo95", "hi95", "naive")}
            where = (f.ticker == ticker, f.as_of >= as_date(r.first_date), f.as_of <= as_date(r.last_date))
            changed += self.conn.execute(sa.update(_forecasts).where(*where).values(scaled)).rowcount
        return changed

    def record_price_revisions(
        self, ticker: str, revisions: Sequence[Any], *, detected_on: dt.date, run_id: int | None, source: str
    ) -> None:
        """Record what a restatement changed (one row per run of dates with one ratio)."""
        now = utcnow()
        rows = [
            {"ticker": ticker, "detected_on": as_date(detected_on), "detected_at": now, "run_id": run_id,
             "first_date": as_date(r.first_date), "last_date": as_date(r.last_date), "ratio": float(r.ratio),
             "sessions": int(r.sessions), "source": source}
            for r in revisions
        ]  # fmt: skip
        if rows:
            self.conn.execute(sa.insert(_revisions), rows)

    def add_model_version(self, version: NewModelVersion, *, artifact: bytes | None = None) -> int:
        """Record a trained model with its lineage; ``status="champion"`` also promotes it. Returns its id.

        ``artifact`` (the bundle archive, whose sha256 must be ``version.artifact_sha256``) is stored in the same
        transaction, and artefacts that this version makes old are pruned (see :meth:`prune_artifacts`).
        """
        if version.kind not in MODEL_KINDS:
            raise ValueError(f"model kind {version.kind!r} is not one of {MODEL_KINDS}")
        if artifact is not None and (actual := hashlib.sha256(artifact).hexdigest()) != version.artifact_sha256:
            raise ValueError(f"artefact sha256 {actual[:12]} != the recorded {version.artifact_sha256[:12]}")
        values = asdict(version) | {
            "train_start": as_date(version.train_start), "train_end": as_date(version.train_end),
            "artifact_path": str(version.artifact_path), "created_at": utcnow(),
            "status": "candidate" if version.status == "champion" else version.status,
        }  # fmt: skip
        version_id = int(self.conn.execute(sa.insert(_versions).values(values).returning(_versions.c.id)).scalar_one())
        if artifact is not None:
            row = {"model_version_id": version_id, "sha256": version.artifact_sha256, "size": len(artifact)}
            self.conn.execute(
                sa.insert(_artifacts).values(row | {"data": artifact, "created_at": values["created_at"]})
            )
        if version.status == "champion":
            self.promote(version_id)
        else:
            self._apply_retention(version.ticker)
        return version_id

    def promote(self, version_id: int) -> None:
        """Make ``version_id`` the champion of its ticker and retire the previous champion."""
        ticker = self.conn.scalar(sa.select(_versions.c.ticker).where(_versions.c.id == version_id))
        if ticker is None:
            raise ValueError(f"model version {version_id} does not exist")
        self.conn.execute(
            sa.update(_versions)
            .where(_versions.c.ticker == ticker, _versions.c.status == "champion", _versions.c.id != version_id)
            .values(status="retired")
        )
        self.conn.execute(sa.update(_versions).where(_versions.c.id == version_id).values(status="champion"))
        self._apply_retention(ticker)

    def prune_artifacts(self, keep: int, ticker: str | None = None) -> list[int]:
        """Delete the artefacts of versions that are neither a champion nor among the ``keep`` newest of their
        ticker (registry rows and metrics stay). Returns the ids of the versions pruned."""
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        v = _versions.c
        rank = sa.func.row_number().over(partition_by=v.ticker, order_by=v.id.desc()).label("rank")
        ranked = sa.select(v.id, v.status, rank)
        if ticker is not None:
            ranked = ranked.where(v.ticker == ticker)
        old = ranked.subquery()
        stale = sa.select(old.c.id).where(old.c.rank > keep, old.c.status != "champion")
        pruned = self.conn.execute(
            sa.delete(_artifacts)
            .where(_artifacts.c.model_version_id.in_(stale))
            .returning(_artifacts.c.model_version_id)
        )
        return sorted(int(i) for i in pruned.scalars())

    def _apply_retention(self, ticker: str) -> None:
        if self.artifact_retention is not None:
            self.prune_artifacts(self.artifact_retention, ticker)

    def upsert_forecasts(
        self,
        run_id: int,
        model_version_id: int,
        ticker: str,
        frame: pd.DataFrame,
        scope: str = "live",
        model: str = "lstm",
    ) -> int:
        """Insert or update forecasts (columns as_of, horizon, target_date, naive, point, lo80..hi95).

        The key is (ticker, scope, model, as_of, horizon, model_version_id).

        Returns:
            The number of rows inserted or changed; rewriting identical forecasts returns 0.
        """
        require_columns(frame, FORECAST_FRAME_COLUMNS, "forecast frame")
        fixed = {"run_id": run_id, "model_version_id": model_version_id, "ticker": ticker, "scope": scope}
        origins, targets = to_dates(frame["as_of"]), to_dates(frame["target_date"])
        horizons = [int(h) for h in frame["horizon"]]
        floats = {c: to_floats(frame[c]) for c in ("point", "lo80", "hi80", "lo95", "hi95")}
        floats["naive"] = to_floats(frame["naive"])
        rows = [
            fixed
            | {"model": model, "as_of": origins[i], "target_date": targets[i], "horizon": horizons[i]}
            | {c: floats[c][i] for c in floats}
            for i in range(len(frame))
        ]
        compared = ("target_date", "point", "lo80", "hi80", "lo95", "hi95", "naive")
        return _upsert(self.conn, _forecasts, rows, FORECAST_KEY, compared, ("run_id",))

    def write_metrics(
        self,
        run_id: int,
        model_version_id: int | None,
        scope: str,
        metrics: dict[str, float],
        window_start: dt.date | None,
        window_end: dt.date | None,
    ) -> None:
        """Write named metric values; rewriting the same (run, model version, scope, name) updates in place."""
        window = {"window_start": as_date(window_start), "window_end": as_date(window_end)}
        for name, value in metrics.items():
            where = (
                _metrics.c.run_id == run_id,
                _metrics.c.model_version_id.is_not_distinct_from(model_version_id),
                _metrics.c.scope == scope,
                _metrics.c.name == name,
            )
            values = {"value": to_float(value)} | window
            if self.conn.execute(sa.update(_metrics).where(*where).values(values)).rowcount == 0:
                key = {"run_id": run_id, "model_version_id": model_version_id, "scope": scope, "name": name}
                self.conn.execute(sa.insert(_metrics).values(key | values))

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
        _update_run(self.conn, run_id, values, only_running=True)


class Repository:
    """All database access of the application, over one engine."""

    def __init__(self, engine: Engine, artifact_retention: int | None = None) -> None:
        self.engine = engine
        self.artifact_retention = artifact_retention  # None: keep every artefact

    @classmethod
    def from_url(
        cls, url: str | None = None, *, check_schema: bool = True, artifact_retention: int | None = None
    ) -> Repository:
        """Open the database at ``url`` (default: the configured one), check it answers and is up to date.

        ``artifact_retention``: keep the artefacts of every champion and of the newest N versions per ticker.
        """
        engine = make_engine(url or database_url())
        try:
            check_connection(engine)
            if check_schema:
                ensure_schema_current(engine)
        except Exception:
            engine.dispose()
            raise
        return cls(engine, artifact_retention)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()

    def run_lock(self, name: str, timeout: float) -> AbstractContextManager[None]:
        """Hold the run lock ``name`` (waiting up to ``timeout`` s); it dies with this process (see :mod:`db.locks`)."""
        return hold_lock(self.engine, name, timeout)

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """One transaction: commit when the block ends, roll back everything if it raises."""
        with begin_write(self.engine) as conn:
            yield UnitOfWork(conn, self.artifact_retention)

    # -- runs ---------------------------------------------------------------------------------------------

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
                return int(conn.execute(sa.insert(_runs).values(values).returning(_runs.c.id)).scalar_one())
        except sa.exc.IntegrityError:
            raise DuplicateRunError(f"a {kind} run of {ticker} {as_date(as_of)} is already running") from None

    def fail_run(self, run_id: int, error: str) -> None:
        """Mark the run ``failed`` with its error text (in its own transaction)."""
        with begin_write(self.engine) as conn:
            _update_run(conn, run_id, {"status": "failed", "error": str(error), "finished_at": utcnow()})

    def skip_run(self, run_id: int, reason: str) -> None:
        """Mark the run ``skipped``; the reason goes in ``error``."""
        with begin_write(self.engine) as conn:
            _update_run(conn, run_id, {"status": "skipped", "error": str(reason), "finished_at": utcnow()})

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

    # -- model versions -----------------------------------------------------------------------------------

    def champion(self, ticker: str) -> ModelVersion | None:
        """The current champion of ``ticker``, if any."""
        query = sa.select(ModelVersion).where(ModelVersion.ticker == ticker, ModelVersion.status == "champion")
        with self._session() as session:
            return session.scalars(query).first()

    def latest_full_fit(self, ticker: str) -> dt.date | None:
        """The data end of the newest live full fit of ``ticker``, promoted or not (backtest versions excluded)."""
        query = (
            sa.select(_versions.c.config)
            .where(_versions.c.ticker == ticker, _versions.c.kind == "full")
            .order_by(_versions.c.id.desc())
        )
        with self.engine.connect() as conn:
            for config in conn.scalars(query):
                if (config or {}).get("scope", "live") == "live" and "data_end" in config:
                    return as_date(config["data_end"])
        return None

    def model_version(self, version_id: int) -> ModelVersion | None:
        """One model version by id."""
        with self._session() as session:
            return session.get(ModelVersion, version_id)

    # -- model artefacts ----------------------------------------------------------------------------------

    def artifact_data(self, version_id: int) -> bytes | None:
        """The stored archive of a model version, or None when it was pruned (or never stored)."""
        with self.engine.connect() as conn:
            data = conn.scalar(sa.select(_artifacts.c.data).where(_artifacts.c.model_version_id == version_id))
        return None if data is None else bytes(data)

    def list_versions(self, ticker: str | None = None, version_id: int | None = None) -> list[dict[str, Any]]:
        """Model versions (newest first) with their artefact's sha256 and size (None when pruned); reads no blob."""
        v, a = _versions.c, _artifacts.c
        query = sa.select(
            v.id, v.ticker, v.kind, v.parent_id, v.status, v.preset, v.train_start, v.train_end, v.created_at,
            v.artifact_path, v.artifact_sha256, a.sha256.label("stored_sha256"), a.size,
        ).outerjoin(_artifacts, a.model_version_id == v.id)  # fmt: skip
        if ticker is not None:
            query = query.where(v.ticker == ticker)
        if version_id is not None:
            query = query.where(v.id == version_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(v.id.desc()))]

    def prune_artifacts(self, keep: int, ticker: str | None = None) -> list[int]:
        """:meth:`UnitOfWork.prune_artifacts` in its own transaction."""
        with self.transaction() as tx:
            return tx.prune_artifacts(keep, ticker)

    # -- prices -------------------------------------------------------------------------------------------

    def load_prices(self, ticker: str, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        """Stored bars of ``ticker`` between ``start`` and ``end`` (inclusive) in the standard frame layout."""
        query = sa.select(_prices.c.date, *(_prices.c[c] for c in PRICE_COLUMNS)).where(_prices.c.ticker == ticker)
        if start is not None:
            query = query.where(_prices.c.date >= as_date(start))
        if end is not None:
            query = query.where(_prices.c.date <= as_date(end))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_prices.c.date)).all()
        index = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows]), name="date")
        data = {c: np.array([r[i + 1] for r in rows], dtype=float) for i, c in enumerate(PRICE_COLUMNS)}
        return pd.DataFrame(data, index=index)

    def latest_price_date(self, ticker: str) -> dt.date | None:
        """The date of the newest stored bar of ``ticker``."""
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.max(_prices.c.date)).where(_prices.c.ticker == ticker))

    def price_revisions(self, ticker: str) -> list[PriceRevision]:
        """Every recorded restatement of ``ticker``'s history, oldest first."""
        query = sa.select(PriceRevision).where(PriceRevision.ticker == ticker).order_by(PriceRevision.id)
        with self._session() as session:
            return list(session.scalars(query))

    # -- outcomes -----------------------------------------------------------------------------------------

    def forecasts_due_for_scoring(self, ticker: str, as_of: dt.date) -> pd.DataFrame:
        """Live forecasts with ``target_date <= as_of`` whose close is known, as rows of ``forecast_outcomes``."""
        fo = forecast_outcomes.c
        query = sa.select(forecast_outcomes).where(
            fo.ticker == ticker, fo.scope == "live", fo.target_date <= as_date(as_of)
        )
        return self._outcomes(query.order_by(fo.target_date, fo.horizon, fo.forecast_id))

    def recent_outcomes(self, ticker: str | None = None, last: int = 30, scope: str = "live") -> pd.DataFrame:
        """The ``last`` most recent rows of ``forecast_outcomes`` (by target date), oldest first."""
        fo = forecast_outcomes.c
        query = sa.select(forecast_outcomes).where(fo.scope == scope)
        if ticker is not None:
            query = query.where(fo.ticker == ticker)
        query = query.order_by(fo.target_date.desc(), fo.horizon.desc(), fo.forecast_id.desc()).limit(last)
        return self._outcomes(query).iloc[::-1].reset_index(drop=True)

    def live_outcomes(
        self,
        ticker: str,
        as_of: dt.date,
        window: int = 20,
        model: str = "lstm",
        pending: pd.DataFrame | None = None,
        revisions: Sequence[Any] = (),
    ) -> pd.DataFrame:
        """The last ``window`` matured live horizon-1 rows of ``forecast_outcomes`` up to ``as_of``, newest first.

        ``pending`` bars (fetched, not yet stored) count as if stored: they are written (as
        :meth:`UnitOfWork.write_prices` would, ``revisions`` included) in a transaction that is always rolled back,
        so the rows come from the same ``forecast_outcomes`` view with no lag of a day. The caller scores them
        (:func:`forecaster.evaluation.metrics.score`); this layer computes no metric.
        """
        fo = forecast_outcomes.c
        query = (
            sa.select(forecast_outcomes)
            .where(fo.ticker == ticker, fo.scope == "live", fo.model == model, fo.horizon == 1)
            .where(fo.target_date <= as_date(as_of))
            .order_by(fo.target_date.desc(), fo.forecast_id.desc())
            .limit(window)
        )
        if pending is None or pending.empty:
            return self._outcomes(query)
        with rolled_back(self.engine) as conn:
            UnitOfWork(conn).write_prices(ticker, pending, "pending", revisions)
            result = conn.execute(query)
            return outcome_frame(result.all(), list(result.keys()))

    # -- inspection ---------------------------------------------------------------------------------------

    def count_rows(self) -> dict[str, int]:
        """Row count of every table, for "nothing changed" checks."""
        with self.engine.connect() as conn:
            return {
                name: int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
                for name, table in Base.metadata.tables.items()
            }

    def table_snapshot(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of ``table`` ordered by its primary key, timestamps included."""
        target = Base.metadata.tables[table]
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(target).order_by(*target.primary_key.columns))]

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _outcomes(self, query: sa.Select[Any]) -> pd.DataFrame:
        with self.engine.connect() as conn:
            result = conn.execute(query)
            return outcome_frame(result.all(), list(result.keys()))

    # -- reports: what a daily report reads, and the warnings it records on its run -------------------------

    def latest_run(self, kind: str, ticker: str, until: dt.date | None = None, status: str = "succeeded") -> Run | None:
        """The run of this kind and ticker with the newest as-of day (up to ``until``) and this status."""
        query = sa.select(Run).where(Run.kind == kind, Run.ticker == ticker, Run.status == status)
        if until is not None:
            query = query.where(Run.as_of <= as_date(until))
        with self._session() as session:
            return session.scalars(query.order_by(Run.as_of.desc(), Run.id.desc()).limit(1)).first()

    def run_forecasts(
        self, ticker: str, as_of: dt.date, model_version_id: int, scope: str = "live", model: str = "lstm"
    ) -> pd.DataFrame:
        """The forecasts of one origin by one model version, in the forecast frame layout (``origin`` .. ``hi95``)."""
        f = _forecasts.c
        query = (
            sa.select(f.as_of, f.horizon, f.target_date, f.naive, f.point, f.lo80, f.hi80, f.lo95, f.hi95)
            .where(f.ticker == ticker, f.as_of == as_date(as_of), f.model_version_id == model_version_id)
            .where(f.scope == scope, f.model == model)
            .order_by(f.horizon)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=list(FORECAST_FRAME_COLUMNS))
        for column in ("as_of", "target_date"):
            frame[column] = pd.to_datetime(frame[column])
        return frame.astype({"horizon": "int64"} | {c: float for c in FORECAST_FRAME_COLUMNS[3:]})

    def outcomes_until(
        self, ticker: str, as_of: dt.date, sessions: int = 120, scope: str = "live", model: str = "lstm"
    ) -> pd.DataFrame:
        """Rows of ``forecast_outcomes`` (matured only) whose target is one of the last ``sessions`` stored
        sessions up to ``as_of``, oldest target first."""
        fo, p = forecast_outcomes.c, _prices.c
        recent = (
            sa.select(p.date)
            .where(p.ticker == ticker, p.date <= as_date(as_of))
            .order_by(p.date.desc())
            .limit(sessions)
            .subquery()
        )
        query = (
            sa.select(forecast_outcomes)
            .where(fo.ticker == ticker, fo.scope == scope, fo.model == model)
            .where(
                fo.target_date <= as_date(as_of),
                fo.target_date >= sa.select(sa.func.min(recent.c.date)).scalar_subquery(),
            )
            .order_by(fo.target_date, fo.horizon, fo.forecast_id)
        )
        return self._outcomes(query)

    def price_bar_info(self, ticker: str, day: dt.date) -> dict[str, Any] | None:
        """``date``, ``source`` and ``fetched_at`` of the newest stored bar of ``ticker`` on or before ``day``."""
        query = (
            sa.select(_prices.c.date, _prices.c.source, _prices.c.fetched_at)
            .where(_prices.c.ticker == ticker, _prices.c.date <= as_date(day))
            .order_by(_prices.c.date.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else {"date": row.date, "source": row.source, "fetched_at": row.fetched_at}

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
            query = sa.select(_runs.c.details).where(_runs.c.id == run_id).with_for_update()
            found = conn.execute(query).first()
            if found is None:
                raise ValueError(f"run {run_id} does not exist")
            details = edit(dict(found.details or {}))
            _update_run(conn, run_id, {"details": details})
        return details

    # -- operations: what the health check, alerts and catch-up read ---------------------------------------

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


def _upsert(
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    key: Sequence[str],
    compared: Sequence[str],
    also_set: Sequence[str] = (),
) -> int:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` that only rewrites rows whose ``compared`` values changed.

    Returns the number of rows inserted or changed (``RETURNING`` yields exactly those). Rows are de-duplicated
    on the key (last wins) and sorted by it, so concurrent writers take row locks in one order.
    """
    unique = {tuple(r[k] for k in key): r for r in rows}
    rows = [unique[k] for k in sorted(unique)]
    total = 0
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        stmt: Any
        params: Any
        if conn.dialect.name == "postgresql":
            stmt, params = _pg_unnest_insert(table, chunk), {}
        else:
            stmt, params = sqlite.insert(table), chunk
        changed = sa.or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in compared))
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={c: stmt.excluded[c] for c in (*compared, *also_set)}, where=changed
        ).returning(table.c[key[0]])
        total += len(conn.execute(stmt, params).all())
    return total


def _pg_unnest_insert(table: sa.Table, rows: list[dict[str, Any]]) -> postgresql.Insert:
    """``INSERT ... SELECT * FROM unnest(array, ...)``: one statement with one array parameter per column."""
    columns = list(rows[0])
    arrays = [sa.cast(sa.bindparam(f"col_{c}", [r[c] for r in rows]), _pg_array(table.c[c])) for c in columns]
    source = sa.func.unnest(*arrays).table_valued(*columns).render_derived()
    return postgresql.insert(table).from_select(columns, sa.select(*(source.c[c] for c in columns)))


def _pg_array(column: sa.Column[Any]) -> postgresql.ARRAY[Any]:
    impl = column.type.impl if isinstance(column.type, sa.types.TypeDecorator) else column.type
    return postgresql.ARRAY(impl)


def _update_run(conn: Connection, run_id: int, values: dict[str, Any], only_running: bool = False) -> None:
    query = sa.update(_runs).where(_runs.c.id == run_id)
    if only_running:
        query = query.where(_runs.c.status == "running")
    if conn.execute(query.values(values)).rowcount == 1:
        return
    status = conn.scalar(sa.select(_runs.c.status).where(_runs.c.id == run_id))
    if status is None:
        raise ValueError(f"run {run_id} does not exist")
    raise RunNotRunningError(f"run {run_id} is {status}, no longer running (taken over by another process?)")
