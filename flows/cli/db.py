"""``tsla-forecast db ...``: create, migrate and check the forecast database.

Imports neither TensorFlow nor Prefect, so these commands start fast. Every failure is one line on stderr
(``error: ...``), exit code 1, no traceback, and never a password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from db import migrate
from db.engine import check_connection, database_url, make_engine, redact, scrub
from db.errors import DatabaseError

db_app = typer.Typer(
    help="Create, migrate and check the forecast database (SQLite or PostgreSQL).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DatabaseURL = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL; default $TSLA_FORECAST_DATABASE_URL, else sqlite:///<TSLA_FORECAST_HOME>/forecast.db.",
        show_default=False,
    ),
]


@contextmanager
def _one_line_errors(url: str) -> Iterator[None]:
    """Turn expected failures into ``error: ...`` on stderr and exit code 1."""
    try:
        yield
    except DatabaseError as exc:  # a refused migration included (db.errors.MigrationError)
        _fail(str(exc))
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        _fail(f"database error on {redact(url)}: {scrub(str(reason), url)}")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _status(url: str) -> str:
    current = migrate.current_revision(url) or "base (empty)"
    return f"database {redact(url)} is at revision {current} (code head {migrate.head_revision()})"


@db_app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    database_url_: DatabaseURL = None,
) -> None:
    """Create or migrate the schema up to REVISION (default: head)."""
    url = database_url_ or database_url()
    with _one_line_errors(url):
        migrate.upgrade(url, revision)
        typer.echo(_status(url))


@db_app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every table.")],
    database_url_: DatabaseURL = None,
) -> None:
    """Migrate the schema down to REVISION."""
    url = database_url_ or database_url()
    with _one_line_errors(url):
        migrate.downgrade(url, revision)
        typer.echo(_status(url))


@db_app.command()
def current(database_url_: DatabaseURL = None) -> None:
    """Show the database's schema revision and the code's."""
    url = database_url_ or database_url()
    with _one_line_errors(url):
        typer.echo(_status(url))


@db_app.command()
def check(database_url_: DatabaseURL = None) -> None:
    """Exit 0 if the database answers and its schema matches the code, else print why and exit 1."""
    url = database_url_ or database_url()
    with _one_line_errors(url):
        engine = make_engine(url)
        try:
            check_connection(engine)
            migrate.ensure_schema_current(engine)
        finally:
            engine.dispose()
        typer.echo(f"ok: {_status(url)}")
