"""Test-only database reads and writes (moved out of :class:`db.repository.Repository`), over a repository's engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from db.engine import begin_write
from db.frames import as_date, outcome_frame
from db.repository import Repository
from db.repository.runs import update_run
from db.schema import Base, PriceRevision, forecast_outcomes, utcnow


def count_rows(repo: Repository) -> dict[str, int]:
    """Row count of every table, for "nothing changed" checks."""
    with repo.engine.connect() as conn:
        return {
            name: int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for name, table in Base.metadata.tables.items()
        }


def table_snapshot(repo: Repository, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` ordered by its primary key, timestamps included."""
    target = Base.metadata.tables[table]
    with repo.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(target).order_by(*target.primary_key.columns))]


def skip_run(repo: Repository, run_id: int, reason: str) -> None:
    """Mark the run ``skipped``; the reason goes in ``error``."""
    with begin_write(repo.engine) as conn:
        update_run(conn, run_id, {"status": "skipped", "error": str(reason), "finished_at": utcnow()})


def stored_price_revisions(repo: Repository, ticker: str) -> list[PriceRevision]:
    """Every recorded restatement of ``ticker``'s history, oldest first."""
    query = sa.select(PriceRevision).where(PriceRevision.ticker == ticker).order_by(PriceRevision.id)
    with Session(repo.engine, expire_on_commit=False) as session:
        return list(session.scalars(query))


def forecasts_due_for_scoring(repo: Repository, ticker: str, as_of: dt.date) -> pd.DataFrame:
    """Live forecasts with ``target_date <= as_of`` whose close is known, as rows of ``forecast_outcomes``."""
    fo = forecast_outcomes.c
    query = sa.select(forecast_outcomes).where(
        fo.ticker == ticker, fo.scope == "live", fo.target_date <= as_date(as_of)
    )
    with repo.engine.connect() as conn:
        result = conn.execute(query.order_by(fo.target_date, fo.horizon, fo.forecast_id))
        return outcome_frame(result.all(), list(result.keys()))
