"""The README's SQL recipes for the prediction history. Portable: each runs unchanged on SQLite and PostgreSQL.

They only use standard SQL (CTEs, ``WITH RECURSIVE``, window functions with a named ``WINDOW``), plus
``SQRT`` (PostgreSQL; SQLite's math functions, registered by :func:`db.engine.make_engine` where missing)
and ``ROUND(CAST(x AS NUMERIC), n)``, which both backends accept. Tests run every recipe on both backends,
and ``benchmarks/db.py`` times them on 250k forecasts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """One documented query: a title, what it answers, and the SQL."""

    name: str
    title: str
    description: str
    sql: str


def _recent(days: int) -> str:
    """Portable "the last ``days`` trading days": the date of the ``days``-th newest stored bar."""
    return (
        f"(SELECT MIN(date) FROM (SELECT date FROM prices WHERE ticker = 'TSLA' ORDER BY date DESC LIMIT {days})"
        " AS recent)"
    )


LAST_FORECASTS = Recipe(
    "last_forecasts",
    "The last 30 forecasts against the realised closes",
    "Next-day (horizon 1) live forecasts whose close is known, newest first (from the last 60 trading days).",
    f"""SELECT as_of, target_date, horizon,
       ROUND(CAST(point AS NUMERIC), 2) AS point,
       ROUND(CAST(actual AS NUMERIC), 2) AS actual,
       ROUND(CAST(error AS NUMERIC), 2) AS error,
       ROUND(CAST(naive_error AS NUMERIC), 2) AS naive_error,
       direction_hit, in80, in95
FROM forecast_outcomes
WHERE ticker = 'TSLA' AND scope = 'live' AND model = 'lstm' AND horizon = 1
  AND target_date >= {_recent(60)}
ORDER BY target_date DESC, forecast_id DESC
LIMIT 30""",
)

ROLLING_RMSE = Recipe(
    "rolling_rmse",
    "Rolling 20-day RMSE of the model against naive",
    "RMSE of the next-day forecasts over the 20 trading days ending on each date, beside the naive "
    "(persistence) forecast's; `u2` < 1 means the model beats naive. The scan covers the last 60 trading days.",
    f"""WITH daily AS (
    SELECT target_date,
           AVG(error * error) AS se,
           AVG(naive_error * naive_error) AS naive_se
    FROM forecast_outcomes
    WHERE ticker = 'TSLA' AND scope = 'live' AND model = 'lstm' AND horizon = 1
      AND target_date >= {_recent(60)}
    GROUP BY target_date
),
rolling AS (
    SELECT target_date,
           AVG(se) OVER w AS mse,
           AVG(naive_se) OVER w AS naive_mse,
           COUNT(*) OVER w AS days
    FROM daily
    WINDOW w AS (ORDER BY target_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW)
)
SELECT target_date, days,
       ROUND(CAST(SQRT(mse) AS NUMERIC), 3) AS rmse,
       ROUND(CAST(SQRT(naive_mse) AS NUMERIC), 3) AS naive_rmse,
       ROUND(CAST(SQRT(mse) / NULLIF(SQRT(naive_mse), 0) AS NUMERIC), 3) AS u2
FROM rolling
WHERE days = 20
ORDER BY target_date DESC
LIMIT 10""",
)

COVERAGE = Recipe(
    "coverage_by_horizon",
    "Interval coverage by horizon",
    "Share of realised closes inside the 80% and 95% intervals over the last 250 trading days, with the "
    "mean interval widths; well-calibrated intervals cover about 0.80 and 0.95.",
    f"""SELECT horizon,
       COUNT(*) AS n,
       ROUND(CAST(AVG(in80) AS NUMERIC), 3) AS coverage80,
       ROUND(CAST(AVG(in95) AS NUMERIC), 3) AS coverage95,
       ROUND(CAST(AVG(hi80 - lo80) AS NUMERIC), 2) AS width80,
       ROUND(CAST(AVG(hi95 - lo95) AS NUMERIC), 2) AS width95
FROM forecast_outcomes
WHERE ticker = 'TSLA' AND scope = 'live' AND model = 'lstm'
  AND target_date >= {_recent(250)}
GROUP BY horizon
ORDER BY horizon""",
)

LINEAGE = Recipe(
    "model_lineage",
    "Model lineage",
    "The current champion and its ancestors: each fine-tune points at the version it started from, back to "
    "the last full retrain.",
    """WITH RECURSIVE lineage AS (
    SELECT id, parent_id, kind, status, preset, train_start, train_end, 0 AS depth
    FROM model_versions
    WHERE ticker = 'TSLA' AND status = 'champion'
    UNION ALL
    SELECT m.id, m.parent_id, m.kind, m.status, m.preset, m.train_start, m.train_end, l.depth + 1
    FROM model_versions AS m
    JOIN lineage AS l ON m.id = l.parent_id
)
SELECT depth, id, parent_id, kind, status, preset, train_start, train_end
FROM lineage
ORDER BY depth""",
)

FAILED_RUNS = Recipe(
    "failed_runs",
    "Failed runs",
    "The most recent failed runs with their error text.",
    """SELECT id, kind, ticker, as_of, error
FROM runs
WHERE status = 'failed'
ORDER BY started_at DESC
LIMIT 20""",
)

RECIPES: tuple[Recipe, ...] = (LAST_FORECASTS, ROLLING_RMSE, COVERAGE, LINEAGE, FAILED_RUNS)
