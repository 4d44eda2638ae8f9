"""Alembic, configured in code: upgrade, downgrade, current and head revisions, and the schema check.

The script location is this package's ``migrations`` folder, so it works from any working directory and
from an installed package; no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from db.engine import begin_write, check_connection, make_engine, redact, scrub
from db.errors import DatabaseUnavailableError, SchemaOutdatedError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_HINT = "run `tsla-forecast db upgrade`"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache  # the migrations ship with the code: read once per process (3.7 ms each, on every repository open)
def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (all in one transaction)."""
    _run(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` drops everything)."""
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
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DBAPIError as exc:
        reason = scrub(str(exc.orig), engine.url)
        raise DatabaseUnavailableError(f"cannot read database {redact(engine.url)}: {reason}") from None


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def _run(url: str, action: Callable[[Config], None]) -> None:
    engine = make_engine(url)
    try:
        check_connection(engine)
        config = alembic_config()
        with begin_write(engine) as conn:
            config.attributes["connection"] = conn
            action(config)
    finally:
        engine.dispose()
