"""Exceptions of the storage layer. ``str()`` of each is one human line with any password redacted."""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class: anything the CLI should print as one line and exit non-zero."""


class DatabaseUnavailableError(DatabaseError):
    """The database could not be reached or opened (server down, bad host, unwritable file)."""


class BadDatabaseURLError(DatabaseError):
    """The database URL cannot be parsed or names an unsupported backend or driver."""


class SchemaOutdatedError(DatabaseError):
    """The database schema revision does not match the code's migrations."""


class MigrationError(DatabaseError):
    """Alembic refused a migration (say, an unknown revision)."""


class RunNotRunningError(DatabaseError):
    """A run tried to finish after another process had taken it over (marked it failed)."""
