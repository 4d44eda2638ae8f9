"""price_revisions: the record of restated history (a split re-adjusts every stored bar).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table and its indexes."""
    op.create_table(
        "price_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(length=16), nullable=False),
        sa.Column("detected_on", sa.Date(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("first_date", sa.Date(), nullable=False),
        sa.Column("last_date", sa.Date(), nullable=False),
        sa.Column("ratio", sa.Double(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_price_revisions_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_revisions")),
    )
    op.create_index(op.f("ix_price_revisions_run_id"), "price_revisions", ["run_id"], unique=False)
    op.create_index(
        op.f("ix_price_revisions_ticker_detected_on"), "price_revisions", ["ticker", "detected_on"], unique=False
    )


def downgrade() -> None:
    """Drop the table (the restated prices and rescaled forecasts stay as they are)."""
    op.drop_index(op.f("ix_price_revisions_ticker_detected_on"), table_name="price_revisions")
    op.drop_index(op.f("ix_price_revisions_run_id"), table_name="price_revisions")
    op.drop_table("price_revisions")
