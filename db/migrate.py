"""Alembic, configured in code: upgrade, downgrade, current and head revisions, and the schema check.

The script location is this package's ``migrations`` folder, so it works from any working directory and
from an installed package; no ``alembic.ini`` is needed.

The schema check, which every command and every repository open runs, reads the two revisions without Alembic: the
head from the migration files' names, the database's from Alembic's version table. Alembic, and the migration scripts
with what they import, load only to migrate or to explain a mismatch (benchmarks/cli_start.py measures the saving).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db.engine import begin_write, check_connection, make_engine, redact, scrub
from db.errors import DatabaseUnavailableError, MigrationError, SchemaOutdatedError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_HINT = "run `tsla-forecast db upgrade`"
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache  # the migrations ship with the code: read once per process
def head_revision() -> str:
    """The newest revision the code knows: the number that names the newest migration file (``NNNN_*.py`` holds
    revision ``NNNN``, after ``NNNN - 1``; tests/db/test_migrations.py checks this against Alembic's own head)."""
    names = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert names, "no migrations found"
    return names[-1][:4]


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (all in one transaction)."""
    from alembic import command

    _run(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` drops everything)."""
    from alembic import command

    _run(url, lambda config: command.downgrade(config, revision))


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, or ``None`` for an empty database."""
    engine = make_engine(url)
    try:
        check_connection(engine)
        return _current(engine)
    finally:
        engine.dispose()


def ensure_schema_current(engine: Engine) -> None:
    """Raise :class:`SchemaOutdatedError` unless the database is at the code's head revision."""
    current, head = _current(engine), head_revision()
    if current == head:
        return
    where = redact(engine.url)
    if current is None:
        raise SchemaOutdatedError(f"database {where} has no schema yet (code is at {head}); {UPGRADE_HINT}")
    if current in _known_revisions():
        raise SchemaOutdatedError(
            f"database {where} schema is at revision {current}, older than the code ({head}); {UPGRADE_HINT}"
        )
    raise SchemaOutdatedError(
        f"database {where} schema is at revision {current}, which this code does not know (head {head}); "
        "upgrade tsla-forecast"
    )


def _current(engine: Engine) -> str | None:
    """The revision in Alembic's version table, as Alembic reads it: None without the table or without a row."""
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(VERSION_TABLE):
                return None
            versions: list[str] = list(conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    except sa.exc.DBAPIError as exc:
        reason = scrub(str(exc.orig), engine.url)
        raise DatabaseUnavailableError(f"cannot read database {redact(engine.url)}: {reason}") from None
    if len(versions) > 1:  # Alembic refuses this too: our migrations form one line, so one row is all there can be
        found = ", ".join(sorted(versions))
        raise SchemaOutdatedError(f"database {redact(engine.url)} holds several schema revisions ({found}) in "
                                  f"{VERSION_TABLE}: delete all rows but the one its tables are at")  # fmt: skip
    return versions[0] if versions else None


@functools.cache
def _known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def _run(url: str, action: Callable[[Config], None]) -> None:
    """``action`` on the database at ``url`` in one transaction; Alembic's refusal is a :class:`MigrationError`."""
    from alembic.util.exc import CommandError

    engine = make_engine(url)
    try:
        check_connection(engine)
        config = alembic_config()
        with begin_write(engine) as conn:
            config.attributes["connection"] = conn
            action(config)
    except CommandError as exc:  # e.g. an unknown revision
        raise MigrationError(f"migration failed on {redact(url)}: {scrub(str(exc), url)}") from None
    finally:
        engine.dispose()
