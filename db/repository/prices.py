"""Prices: idempotent bar upserts, restated history and its record, and the price reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from db.frames import as_date, require_columns, to_dates, to_floats
from db.repository.base import ReaderBase, WriterBase, prices_table, revisions_table, upsert
from db.schema import utcnow

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class PricesUnitMixin(WriterBase):
    """Price writes of a :class:`db.repository.UnitOfWork`."""

    if TYPE_CHECKING:  # provided by ForecastsUnitMixin in the composed UnitOfWork

        def restate_forecasts(self, ticker: str, revisions: Sequence[Any]) -> int: ...

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
        return upsert(self.conn, prices_table, rows, ("ticker", "date"), PRICE_COLUMNS, ("source", "fetched_at"))

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
        self.conn.execute(sa.delete(prices_table).where(prices_table.c.ticker == ticker))
        return self.upsert_prices(ticker, frame, source)

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
            self.conn.execute(sa.insert(revisions_table), rows)


class PricesMixin(ReaderBase):
    """Price reads of a :class:`db.repository.Repository`."""

    def load_prices(self, ticker: str, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        """Stored bars of ``ticker`` between ``start`` and ``end`` (inclusive) in the standard frame layout."""
        p = prices_table.c
        query = sa.select(p.date, *(p[c] for c in PRICE_COLUMNS)).where(p.ticker == ticker)
        if start is not None:
            query = query.where(p.date >= as_date(start))
        if end is not None:
            query = query.where(p.date <= as_date(end))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(p.date)).all()
        index = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows]), name="date")
        data = {c: np.array([r[i + 1] for r in rows], dtype=float) for i, c in enumerate(PRICE_COLUMNS)}
        return pd.DataFrame(data, index=index)

    def latest_price_date(self, ticker: str) -> dt.date | None:
        """The date of the newest stored bar of ``ticker``."""
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.max(prices_table.c.date)).where(prices_table.c.ticker == ticker))

    def price_bar_info(self, ticker: str, day: dt.date) -> dict[str, Any] | None:
        """``date``, ``source`` and ``fetched_at`` of the newest stored bar of ``ticker`` on or before ``day``."""
        p = prices_table.c
        query = (
            sa.select(p.date, p.source, p.fetched_at)
            .where(p.ticker == ticker, p.date <= as_date(day))
            .order_by(p.date.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else {"date": row.date, "source": row.source, "fetched_at": row.fetched_at}
