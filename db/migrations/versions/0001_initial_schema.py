"""Initial schema: prices, model_versions, runs, forecasts, metrics and the forecast_outcomes view.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 06:46:28.483529
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create every table, index and the view."""
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("preset", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("train_start", sa.Date(), nullable=False),
        sa.Column("train_end", sa.Date(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("artifact_path", sa.Text(), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('full', 'finetune')", name=op.f("ck_model_versions_kind")),
        sa.CheckConstraint("status IN ('candidate', 'champion', 'retired')", name=op.f("ck_model_versions_status")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["model_versions.id"], name=op.f("fk_model_versions_parent_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
    )
    op.create_index(op.f("ix_model_versions_parent_id"), "model_versions", ["parent_id"], unique=False)
    op.create_index(op.f("ix_model_versions_ticker_status"), "model_versions", ["ticker", "status"], unique=False)
    op.create_index(
        "uq_model_versions_one_champion_per_ticker",
        "model_versions",
        ["ticker"],
        unique=True,
        postgresql_where=sa.text("status = 'champion'"),
        sqlite_where=sa.text("status = 'champion'"),
    )

    op.create_table(
        "prices",
        sa.Column("ticker", sa.String(length=16), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "date", name=op.f("pk_prices")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ticker", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'skipped')", name=op.f("ck_runs_status")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_runs_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_model_version_id"), "runs", ["model_version_id"], unique=False)
    op.create_index(op.f("ix_runs_status_started_at"), "runs", ["status", "started_at"], unique=False)
    op.create_index(
        op.f("ix_runs_ticker_kind_as_of_status"), "runs", ["ticker", "kind", "as_of", "status"], unique=False
    )

    op.create_table(
        "forecasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("ticker", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("point", sa.Double(), nullable=False),
        sa.Column("lo80", sa.Double(), nullable=True),
        sa.Column("hi80", sa.Double(), nullable=True),
        sa.Column("lo95", sa.Double(), nullable=True),
        sa.Column("hi95", sa.Double(), nullable=True),
        sa.Column("naive", sa.Double(), nullable=False),
        sa.CheckConstraint("scope IN ('live', 'backtest')", name=op.f("ck_forecasts_scope")),
        sa.CheckConstraint("horizon >= 1", name=op.f("ck_forecasts_horizon")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_forecasts_model_version_id_model_versions")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_forecasts_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecasts")),
        sa.UniqueConstraint(
            "ticker", "scope", "model", "as_of", "horizon", "model_version_id", name="uq_forecasts_key"
        ),
    )
    op.create_index(op.f("ix_forecasts_model_version_id"), "forecasts", ["model_version_id"], unique=False)
    op.create_index(op.f("ix_forecasts_run_id"), "forecasts", ["run_id"], unique=False)
    op.create_index(
        op.f("ix_forecasts_ticker_scope_horizon_target_date"),
        "forecasts",
        ["ticker", "scope", "horizon", "target_date"],
        unique=False,
    )
    op.create_index(
        op.f("ix_forecasts_ticker_scope_target_date"), "forecasts", ["ticker", "scope", "target_date"], unique=False
    )

    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("window_start", sa.Date(), nullable=True),
        sa.Column("window_end", sa.Date(), nullable=True),
        sa.CheckConstraint("scope IN ('validation', 'backtest', 'live')", name=op.f("ck_metrics_scope")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_metrics_model_version_id_model_versions")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metrics_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
    )
    op.create_index(op.f("ix_metrics_model_version_id"), "metrics", ["model_version_id"], unique=False)
    op.create_index(op.f("ix_metrics_run_id_scope_name"), "metrics", ["run_id", "scope", "name"], unique=False)

    op.execute(f"CREATE VIEW forecast_outcomes AS {FORECAST_OUTCOMES_SQL}")


def downgrade() -> None:
    """Drop everything, the view first."""
    op.execute("DROP VIEW IF EXISTS forecast_outcomes")
    op.drop_table("metrics")
    op.drop_table("forecasts")
    op.drop_table("runs")
    op.drop_table("prices")
    op.drop_table("model_versions")


# Frozen copy of the view as of this revision (db.schema.FORECAST_OUTCOMES_SQL may move on in later revisions).
FORECAST_OUTCOMES_SQL = """
SELECT f.id AS forecast_id, f.run_id, f.model_version_id, f.model, f.scope, f.ticker,
       f.as_of, f.target_date, f.horizon, f.point, f.lo80, f.hi80, f.lo95, f.hi95, f.naive,
       p.close AS actual,
       p.close - f.point AS error,
       ABS(p.close - f.point) AS abs_error,
       p.close - f.naive AS naive_error,
       ABS(p.close - f.naive) AS naive_abs_error,
       CASE WHEN (f.point > f.naive AND p.close > f.naive)
              OR (f.point < f.naive AND p.close < f.naive)
              OR (f.point = f.naive AND p.close = f.naive) THEN 1 ELSE 0 END AS direction_hit,
       CASE WHEN f.lo80 IS NULL OR f.hi80 IS NULL THEN NULL
            WHEN p.close >= f.lo80 AND p.close <= f.hi80 THEN 1 ELSE 0 END AS in80,
       CASE WHEN f.lo95 IS NULL OR f.hi95 IS NULL THEN NULL
            WHEN p.close >= f.lo95 AND p.close <= f.hi95 THEN 1 ELSE 0 END AS in95
FROM forecasts AS f
JOIN prices AS p ON p.ticker = f.ticker AND p.date = f.target_date
"""
