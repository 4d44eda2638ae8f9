"""The only package that writes SQL: runs, prices, model versions, forecasts and metrics, plus read helpers.

One module per aggregate (:mod:`.runs`, :mod:`.prices`, :mod:`.models`, :mod:`.forecasts`), each with a mixin
of :class:`Repository` (reads, and writes committed on their own) and one of :class:`UnitOfWork` (a run's writes).
Writes of one run happen in one transaction (:meth:`Repository.transaction` yields a :class:`UnitOfWork`).
Prices and forecasts are idempotent ``INSERT ... ON CONFLICT DO UPDATE`` upserts on both SQLite and
PostgreSQL that only touch a row when its values changed, so re-running a run changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Self

from db.engine import begin_write, check_connection, database_url, make_engine
from db.locks import hold_lock
from db.migrate import ensure_schema_current
from db.repository.base import CHUNK_ROWS
from db.repository.forecasts import FORECAST_FRAME_COLUMNS, ForecastsMixin, ForecastsUnitMixin
from db.repository.models import ModelsMixin, ModelsUnitMixin, NewModelVersion
from db.repository.prices import PRICE_COLUMNS, PricesMixin, PricesUnitMixin
from db.repository.runs import FINAL_STATUSES, DuplicateRunError, RunsMixin, RunsUnitMixin

__all__ = [
    "CHUNK_ROWS",
    "FINAL_STATUSES",
    "FORECAST_FRAME_COLUMNS",
    "PRICE_COLUMNS",
    "DuplicateRunError",
    "NewModelVersion",
    "Repository",
    "UnitOfWork",
]


class UnitOfWork(RunsUnitMixin, PricesUnitMixin, ModelsUnitMixin, ForecastsUnitMixin):
    """The writes of one run, inside one database transaction (see :meth:`Repository.transaction`)."""


class Repository(RunsMixin, PricesMixin, ModelsMixin, ForecastsMixin):
    """All database access of the application, over one engine."""

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
