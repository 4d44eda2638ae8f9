"""forecast_outcomes: direction_hit as the Python metric defines it (a forecast equal to the last close is no call).

Revision 0001 counted an unchanged close as a hit when the forecast also equalled the last close; now a hit needs
the forecast and the close to move the same way from the last close (``forecaster.evaluation.metrics.direction_hits``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 20:40:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Recreate the view with the new ``direction_hit``."""
    _replace_view(FORECAST_OUTCOMES_SQL)


def downgrade() -> None:
    """Restore the view of revision 0001."""
    _replace_view(_initial_view_sql())


def _replace_view(sql: str) -> None:
    op.execute("DROP VIEW IF EXISTS forecast_outcomes")
    op.execute(f"CREATE VIEW forecast_outcomes AS {sql}")


def _initial_view_sql() -> str:
    """The frozen view SQL of revision 0001 (migration files are not an importable package)."""
    path = Path(__file__).with_name("0001_initial_schema.py")
    spec = importlib.util.spec_from_file_location("tsla_forecast_migration_0001", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.FORECAST_OUTCOMES_SQL)


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
              OR (f.point < f.naive AND p.close < f.naive) THEN 1 ELSE 0 END AS direction_hit,
       CASE WHEN f.lo80 IS NULL OR f.hi80 IS NULL THEN NULL
            WHEN p.close >= f.lo80 AND p.close <= f.hi80 THEN 1 ELSE 0 END AS in80,
       CASE WHEN f.lo95 IS NULL OR f.hi95 IS NULL THEN NULL
            WHEN p.close >= f.lo95 AND p.close <= f.hi95 THEN 1 ELSE 0 END AS in95
FROM forecasts AS f
JOIN prices AS p ON p.ticker = f.ticker AND p.date = f.target_date
"""
