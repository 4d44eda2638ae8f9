"""Alembic migrations: up, down and up again on both backends, and the ORM matches the migrated schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from db import migrate
from db.engine import make_engine
from db.schema import Base, forecast_outcomes

TABLES = {"prices", "model_versions", "runs", "forecasts", "metrics"}


def _tables_and_views(url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        return set(inspector.get_table_names()), set(inspector.get_view_names())
    finally:
        engine.dispose()


def _autogenerate_diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(db_url: str) -> None:
    assert migrate.current_revision(db_url) is None
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    migrate.downgrade(db_url, "base")
    tables, views = _tables_and_views(db_url)
    assert tables <= {"alembic_version"} and views == set()
    assert migrate.current_revision(db_url) is None
    migrate.upgrade(db_url)
    tables, views = _tables_and_views(db_url)
    assert TABLES <= tables and views == {"forecast_outcomes"}


def test_autogenerate_reports_no_difference_after_upgrade(migrated_url: str) -> None:
    assert _autogenerate_diff(migrated_url) == []


def test_autogenerate_notices_a_missing_table(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE metrics")
    engine.dispose()
    added = [op[1].name for op in _autogenerate_diff(db_url) if op[0] == "add_table"]
    assert added == ["metrics"]


def test_view_exposes_the_documented_columns(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        columns = list(conn.execute(sa.text("SELECT * FROM forecast_outcomes")).keys())
    assert columns == [c.name for c in forecast_outcomes.columns]


def test_migrations_run_from_any_working_directory(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()


def test_head_revision_is_the_run_keys() -> None:
    assert migrate.head_revision() == "0003"
    assert (migrate.MIGRATIONS_DIR / "versions" / "0003_run_keys.py").exists()


def _revision_module(name: str):
    import importlib.util

    path = migrate.MIGRATIONS_DIR / "versions" / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_head_revision_creates_the_view_the_code_documents() -> None:
    from db.schema import FORECAST_OUTCOMES_SQL

    head = _revision_module("0002_direction_view.py")
    assert (head.revision, head.down_revision) == ("0002", "0001")
    assert head.FORECAST_OUTCOMES_SQL == FORECAST_OUTCOMES_SQL
    initial = _revision_module("0001_initial_schema.py").FORECAST_OUTCOMES_SQL
    assert "f.point = f.naive AND p.close = f.naive" in initial and initial != FORECAST_OUTCOMES_SQL


def test_downgrade_to_0001_keeps_the_tables_and_restores_its_view(migrated_url: str) -> None:
    migrate.downgrade(migrated_url, "0001")
    assert migrate.current_revision(migrated_url) == "0001"
    tables, views = _tables_and_views(migrated_url)
    assert TABLES <= tables and views == {"forecast_outcomes"}
    migrate.upgrade(migrated_url)
    assert migrate.current_revision(migrated_url) == "0002"
