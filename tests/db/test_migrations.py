"""Alembic migrations: up, down and up again on both backends, and the ORM matches the migrated schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from db import migrate
from db.engine import make_engine
from db.errors import SchemaOutdatedError
from db.schema import Base, forecast_outcomes

ROOT = Path(__file__).resolve().parents[2]

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


def test_head_revision_is_alembics_head_and_the_migrations_form_one_numbered_line() -> None:
    """``head_revision`` reads the newest file's number; that is Alembic's head only while file ``NNNN_*.py`` holds
    revision ``NNNN`` after ``NNNN - 1``, so every file is checked."""
    names = sorted(p.name for p in (migrate.MIGRATIONS_DIR / "versions").glob("*.py"))
    assert migrate.head_revision() == names[-1][:4] == "0005"
    assert migrate.head_revision() == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    for number, name in enumerate(names, start=1):
        module = _revision_module(name)
        assert (module.revision, module.down_revision) == (f"{number:04d}", f"{number - 1:04d}" if number > 1 else None)


def _alembics_current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_the_current_revision_is_read_as_alembic_reads_it(db_url: str) -> None:
    """Without a version table, at head, at 0001, with the table emptied by a downgrade to base, on both backends."""
    seen = [(migrate.current_revision(db_url), _alembics_current(db_url))]
    migrate.upgrade(db_url)
    seen.append((migrate.current_revision(db_url), _alembics_current(db_url)))
    migrate.downgrade(db_url, "0001")
    seen.append((migrate.current_revision(db_url), _alembics_current(db_url)))
    migrate.downgrade(db_url, "base")
    seen.append((migrate.current_revision(db_url), _alembics_current(db_url)))
    head = migrate.head_revision()
    assert seen == [(None, None), (head, head), ("0001", "0001"), (None, None)]


def test_several_revisions_in_the_version_table_are_refused_with_one_line(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('0003')"))
        with pytest.raises(SchemaOutdatedError, match=r"several schema revisions \(0003, 0005\) in alembic_version"):
            migrate.ensure_schema_current(engine)
    finally:
        engine.dispose()


def test_the_cli_and_a_schema_check_do_not_import_alembic(migrated_url: str) -> None:
    """What every command and repository open pays: the check reads two revisions, and Alembic loads only to
    migrate or to explain a mismatch (the CPU this saves: benchmarks/cli_start.py)."""
    code = (
        "import sys; import flows.cli; from db.repository import Repository; "
        f"Repository.from_url({migrated_url!r}).dispose(); "
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


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
    assert migrate.current_revision(migrated_url) == migrate.head_revision()


# -- 0004: model artefacts move into the database, and back out on downgrade ----------------------------------


def _old_style_version(url: str, folder: Path) -> int:
    """A model_versions row as revision 0003 wrote it: a bundle folder on disk and its folder sha256."""
    from forecaster.models.networks import BUNDLE_FILES, directory_sha256

    folder.mkdir(parents=True)
    for name in BUNDLE_FILES:
        (folder / name).write_bytes(name.encode() * 100)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(
                sa.text(
                    "INSERT INTO model_versions (ticker, kind, status, preset, config, train_start, train_end, metrics,"
                    " artifact_path, artifact_sha256, created_at) VALUES ('TSLA', 'full', 'retired', 'smoke', '{}',"
                    " '2024-01-02', '2024-06-03', '{}', :path, :sha, '2024-06-03 22:00:00+00:00') RETURNING id"
                ),
                {"path": str(folder), "sha": directory_sha256(folder)},
            ).scalar_one()
    finally:
        engine.dispose()


def test_0004_moves_bundles_into_the_database_and_the_downgrade_writes_them_back(db_url: str, tmp_path: Path) -> None:
    import shutil

    from db.repository import Repository
    from forecaster.models.networks import bundle_to_bytes, bytes_sha256, directory_sha256

    migrate.upgrade(db_url, "0003")
    folder = tmp_path / "models" / "TSLA" / "v1"
    version_id = _old_style_version(db_url, folder)
    missing = _old_style_version(db_url, tmp_path / "models" / "TSLA" / "gone")
    shutil.rmtree(tmp_path / "models" / "TSLA" / "gone")
    archive = bundle_to_bytes(folder)
    migrate.upgrade(db_url, "0004")
    repo = Repository.from_url(db_url, check_schema=False)  # at 0004, below the head
    try:
        assert repo.artifact_data(version_id) == archive
        assert repo.model_version(version_id).artifact_sha256 == bytes_sha256(archive), "the cache key"
        assert repo.artifact_data(missing) is None, "a missing bundle gets no artefact, and no failure"
    finally:
        repo.dispose()
    shutil.rmtree(folder)
    migrate.downgrade(db_url, "0003")
    assert bundle_to_bytes(folder) == archive, "the downgrade wrote the bundle back out"
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            sha = conn.scalar(sa.text("SELECT artifact_sha256 FROM model_versions WHERE id = :i"), {"i": version_id})
        assert sha == directory_sha256(folder)
        assert "model_artifacts" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
