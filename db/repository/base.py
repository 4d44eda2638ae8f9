"""What every aggregate module of the repository shares: table handles, the upsert, the two base classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from db.frames import outcome_frame
from db.schema import Base, Forecast, Metric, ModelArtifact, ModelVersion, Price, PriceRevision, Run

CHUNK_ROWS = 5000  # rows per executemany call; SQLAlchemy pages each into multi-row VALUES within driver limits

prices_table = Base.metadata.tables[Price.__tablename__]
forecasts_table = Base.metadata.tables[Forecast.__tablename__]
metrics_table = Base.metadata.tables[Metric.__tablename__]
runs_table = Base.metadata.tables[Run.__tablename__]
versions_table = Base.metadata.tables[ModelVersion.__tablename__]
artifacts_table = Base.metadata.tables[ModelArtifact.__tablename__]
revisions_table = Base.metadata.tables[PriceRevision.__tablename__]


class ReaderBase:
    """The state of a :class:`db.repository.Repository`: one engine and the artefact retention."""

    def __init__(self, engine: Engine, artifact_retention: int | None = None) -> None:
        self.engine = engine
        self.artifact_retention = artifact_retention  # None: keep every artefact

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _outcomes(self, query: sa.Select[Any]) -> pd.DataFrame:
        with self.engine.connect() as conn:
            result = conn.execute(query)
            return outcome_frame(result.all(), list(result.keys()))


class WriterBase:
    """The state of a :class:`db.repository.UnitOfWork`: one connection inside a transaction."""

    def __init__(self, conn: Connection, artifact_retention: int | None = None) -> None:
        self.conn = conn
        self.artifact_retention = artifact_retention


def upsert(
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
