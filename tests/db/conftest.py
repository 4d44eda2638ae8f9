"""Fixtures of the storage tests: ``db_url`` (empty) and ``migrated_url``/``engine``/``repo`` (at head),
each parametrised over SQLite and PostgreSQL (marked ``postgres``)."""

from tests.db.fixtures import (  # noqa: F401 - re-exported fixtures
    db_url,
    engine,
    migrated_url,
    postgres_template,
    repo,
    sqlite_template,
)
