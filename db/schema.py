"""SQLAlchemy 2 typed ORM tables: prices, model_versions, model_artifacts, runs, forecasts, metrics,
price_revisions, and the outcomes view.

Money and prices are double-precision floats everywhere. Dates are ``DATE``; timestamps are timezone-aware
and always UTC (on SQLite, where there is no time zone type, they are stored as UTC and read back as UTC).
Users query these tables directly, so names and meanings are a public interface: change them only with a
migration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODEL_KINDS = ("full", "finetune")
MODEL_STATUSES = ("candidate", "champion", "retired")
RUN_STATUSES = ("running", "succeeded", "failed", "skipped")
# Kinds with one run per (kind, ticker, as_of): at most one running and one succeeded row (partial unique indexes).
# Backtests are keyed by their parameters as well (several per (ticker, end) are legal), so they are not indexed.
KEYED_RUN_KINDS = ("daily", "retrain")
FORECAST_SCOPES = ("live", "backtest")
METRIC_SCOPES = ("validation", "backtest", "live")
# The idempotency key of a forecast: rewriting the same key updates the row in place.
FORECAST_KEY = ("ticker", "scope", "model", "as_of", "horizon", "model_version_id")


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that only accepts aware datetimes and always returns UTC-aware ones."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone; pass an aware datetime (UTC)")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _run_key_filter(status: str) -> str:
    """The WHERE of the partial unique index allowing one ``status`` run per daily/retrain key."""
    return f"status = '{status}' AND {_one_of('kind', KEYED_RUN_KINDS)}"


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so every constraint has a stable name."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: sa.JSON(), float: sa.Double()}


class Price(Base):
    """One daily bar per (ticker, date)."""

    __tablename__ = "prices"

    ticker: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    date: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    open: Mapped[float]
    high: Mapped[float]
    low: Mapped[float]
    close: Mapped[float]
    volume: Mapped[float]
    source: Mapped[str] = mapped_column(sa.String(200))
    fetched_at: Mapped[dt.datetime]


class ModelVersion(Base):
    """A trained model: lineage (parent), data span, config, metrics and artefact; at most one champion per ticker."""

    __tablename__ = "model_versions"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", MODEL_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("status", MODEL_STATUSES), name="status"),
        sa.Index(
            "uq_model_versions_one_champion_per_ticker",
            "ticker",
            unique=True,
            postgresql_where=sa.text("status = 'champion'"),
            sqlite_where=sa.text("status = 'champion'"),
        ),
        sa.Index(None, "ticker", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticker: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(16))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    preset: Mapped[str] = mapped_column(sa.String(64))
    config: Mapped[dict[str, Any]]
    train_start: Mapped[dt.date]
    train_end: Mapped[dt.date]
    metrics: Mapped[dict[str, Any]]
    artifact_path: Mapped[str] = mapped_column(sa.Text)  # a hint: where the bundle was (or is cached) on disk
    artifact_sha256: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the archive in model_artifacts
    created_at: Mapped[dt.datetime]


class ModelArtifact(Base):
    """The bundle of one model version as one archive (``model.keras``, scalers, metadata), with its sha256.

    A separate table, so that listing versions never reads blobs and pruning an old version's artefact is a
    ``DELETE`` that leaves its registry row and metrics in place.
    """

    __tablename__ = "model_artifacts"

    model_version_id: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime]


class Run(Base):
    """One flow run for one ticker and as-of day: ``running`` then ``succeeded``, ``failed`` or ``skipped``."""

    __tablename__ = "runs"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        sa.Index(None, "ticker", "kind", "as_of", "status"),
        sa.Index(None, "status", "started_at"),
        *(
            sa.Index(
                f"uq_runs_one_{status}_per_key",
                "kind",
                "ticker",
                "as_of",
                unique=True,
                postgresql_where=sa.text(_run_key_filter(status)),
                sqlite_where=sa.text(_run_key_filter(status)),
            )
            for status in ("running", "succeeded")
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32))
    ticker: Mapped[str] = mapped_column(sa.String(16))
    as_of: Mapped[dt.date]
    status: Mapped[str] = mapped_column(sa.String(16))
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    model_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.id"), index=True)
    details: Mapped[dict[str, Any] | None]


class Forecast(Base):
    """One point forecast with its 80%/95% intervals; ``naive`` is the last close at ``as_of``.

    ``model`` names what produced it (``lstm``, or a baseline such as ``naive``/``drift`` in backtests);
    ``scope`` keeps backtest forecasts out of the live history. Rewriting the same key updates in place.
    """

    __tablename__ = "forecasts"
    __table_args__ = (
        sa.UniqueConstraint(*FORECAST_KEY, name="uq_forecasts_key"),
        sa.CheckConstraint(_one_of("scope", FORECAST_SCOPES), name="scope"),
        sa.CheckConstraint("horizon >= 1", name="horizon"),
        sa.Index(None, "ticker", "scope", "horizon", "target_date"),
        sa.Index(None, "ticker", "scope", "target_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.id"), index=True)
    model: Mapped[str] = mapped_column(sa.String(32))
    scope: Mapped[str] = mapped_column(sa.String(16))
    ticker: Mapped[str] = mapped_column(sa.String(16))
    as_of: Mapped[dt.date]
    target_date: Mapped[dt.date]
    horizon: Mapped[int]
    point: Mapped[float]
    lo80: Mapped[float | None]
    hi80: Mapped[float | None]
    lo95: Mapped[float | None]
    hi95: Mapped[float | None]
    naive: Mapped[float]


class Metric(Base):
    """One named metric value of a run (optionally of one model version) over a date window."""

    __tablename__ = "metrics"
    __table_args__ = (
        sa.CheckConstraint(_one_of("scope", METRIC_SCOPES), name="scope"),
        sa.Index(None, "run_id", "scope", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"))
    model_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.id"), index=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float | None]
    window_start: Mapped[dt.date | None]
    window_end: Mapped[dt.date | None]


class PriceRevision(Base):
    """Stored bars that a source restated (a split re-adjusts all history): the dates and the factor applied.

    ``ratio`` is new close / old close on ``first_date..last_date``; forecasts made on those dates were multiplied
    by it in the same transaction, so that they compare with the restated closes in the same units.
    """

    __tablename__ = "price_revisions"
    __table_args__ = (sa.Index(None, "ticker", "detected_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticker: Mapped[str] = mapped_column(sa.String(16))
    detected_on: Mapped[dt.date]
    detected_at: Mapped[dt.datetime]
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    first_date: Mapped[dt.date]
    last_date: Mapped[dt.date]
    ratio: Mapped[float]
    sessions: Mapped[int]
    source: Mapped[str] = mapped_column(sa.String(255))


# Portable SQL (SQLite >= 3.25 and PostgreSQL): the view the README recipes query. ``direction_hit`` is defined as in
# ``forecaster.evaluation.metrics.direction_hits``: 1 when point and close moved the same way from the last close (a
# forecast
# equal to the last close makes no call, an unchanged close no move: both are 0). Changing it needs a migration.
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

# A read-only Table for the view, kept out of ``Base.metadata`` so that autogenerate does not treat it as a table.
view_metadata = sa.MetaData()
_VIEW_COLUMNS: list[tuple[str, type[sa.types.TypeEngine[Any]]]] = [
    ("forecast_id", sa.Integer), ("run_id", sa.Integer), ("model_version_id", sa.Integer),
    ("model", sa.String), ("scope", sa.String), ("ticker", sa.String),
    ("as_of", sa.Date), ("target_date", sa.Date), ("horizon", sa.Integer),
    *((name, sa.Double) for name in ("point", "lo80", "hi80", "lo95", "hi95", "naive", "actual")),
    *((name, sa.Double) for name in ("error", "abs_error", "naive_error", "naive_abs_error")),
    ("direction_hit", sa.Integer), ("in80", sa.Integer), ("in95", sa.Integer),
]  # fmt: skip
forecast_outcomes = sa.Table(
    "forecast_outcomes",
    view_metadata,
    *(sa.Column(name, kind, primary_key=name == "forecast_id") for name, kind in _VIEW_COLUMNS),
)
