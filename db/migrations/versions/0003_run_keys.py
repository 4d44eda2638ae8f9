"""One run per key: at most one ``running`` and one ``succeeded`` run per daily/retrain (kind, ticker, as_of).

Partial unique indexes (PostgreSQL and SQLite), so the database itself refuses a second live or succeeded run of
one key. Backtests are keyed by their parameters too (several succeeded backtests per (ticker, end) are legal) and
are left out of the indexes. Rows that older versions could write twice are resolved first: of duplicate
``succeeded`` runs the first keeps its status and the later ones become ``skipped``; of duplicate ``running`` runs
the newest stays and the older ones become ``failed`` (interrupted).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "kind IN ('daily', 'retrain')"
RESOLVE = """
UPDATE runs SET status = '{new}', error = '{error}'
WHERE status = '{status}' AND {kinds} AND EXISTS (
    SELECT 1 FROM runs AS other
    WHERE other.kind = runs.kind AND other.ticker = runs.ticker AND other.as_of = runs.as_of
      AND other.status = '{status}' AND other.id {keep} runs.id
)
"""


def upgrade() -> None:
    """Resolve duplicate keys, then create the two partial unique indexes."""
    for status, new, keep, error in (
        ("succeeded", "skipped", "<", "duplicate of an earlier succeeded run of this key (migration 0003)"),
        ("running", "failed", ">", "interrupted: superseded by a newer run of this key (migration 0003)"),
    ):
        op.execute(sa.text(RESOLVE.format(new=new, error=error, status=status, kinds=KINDS, keep=keep)))
    for status in ("running", "succeeded"):
        where = sa.text(f"status = '{status}' AND {KINDS}")
        op.create_index(
            f"uq_runs_one_{status}_per_key",
            "runs",
            ["kind", "ticker", "as_of"],
            unique=True,
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    """Drop the indexes (resolved duplicates keep their new status)."""
    for status in ("succeeded", "running"):
        op.drop_index(f"uq_runs_one_{status}_per_key", table_name="runs")
