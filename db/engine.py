"""One database URL, one engine: SQLite (default, WAL + foreign keys) or PostgreSQL via psycopg 3."""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext, make_url

from db.errors import BadDatabaseURLError, DatabaseUnavailableError

ENV_URL = "TSLA_FORECAST_DATABASE_URL"
ENV_HOME = "TSLA_FORECAST_HOME"
DEFAULT_HOME = "~/.tsla-forecast"
SQLITE_BUSY_TIMEOUT_S = 30
POSTGRES_CONNECT_TIMEOUT_S = 5
EXAMPLES = "e.g. sqlite:////path/forecast.db or postgresql+psycopg://user@host:5432/dbname"
_IMMEDIATE = "tsla_sqlite_immediate"


def sqlite_url(home: Path) -> str:
    """The default database: ``sqlite:///<home>/forecast.db`` (the one place that names the file)."""
    return f"sqlite:///{Path(home).expanduser().resolve() / 'forecast.db'}"


def database_url(home: Path | None = None) -> str:
    """The configured URL: ``$TSLA_FORECAST_DATABASE_URL``, else :func:`sqlite_url` of ``home``.

    ``home`` defaults to ``$TSLA_FORECAST_HOME``, else ``~/.tsla-forecast``. (Inside the application
    :attr:`flows.settings.Settings.db_url` resolves the same rule from the settings.)
    """
    env = os.environ.get(ENV_URL, "").strip()
    if env:
        return env
    return sqlite_url(Path(home if home is not None else os.environ.get(ENV_HOME) or DEFAULT_HOME))


def redact(url: str | URL) -> str:
    """The URL with its password replaced by ``***``; works on malformed URLs too."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - malformed: mask whatever sits between the user name and the last "@"
        head, at, tail = str(url).rpartition("@")
        scheme, sep, credentials = head.rpartition("://")
        if not at or ":" not in credentials:
            return str(url)
        return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{tail}"


def scrub(text: str, url: str | URL) -> str:
    """``text`` cut to its first line, with the URL's password (if any) replaced by ``***``."""
    line = (str(text).strip().splitlines() or [""])[0].strip()
    try:
        password = make_url(url).password if not isinstance(url, URL) else url.password
    except Exception:  # noqa: BLE001
        password = None
    if password:
        line = line.replace(str(password), "***")
    return line


def parse_url(url: str) -> URL:
    """Parse and check a database URL; raises :class:`BadDatabaseURLError` for anything unusable."""
    try:
        parsed = make_url(url)
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    except Exception:  # noqa: BLE001 - ArgumentError, ValueError (bad port), NoSuchModuleError (unknown dialect)
        raise BadDatabaseURLError(f"malformed database URL {redact(url)!r} ({EXAMPLES})") from None
    if backend == "sqlite" and driver == "pysqlite":
        return parsed
    if backend == "postgresql" and driver == "psycopg":
        return parsed
    if backend == "postgresql":
        raise BadDatabaseURLError(f"database URL {redact(parsed)!r} uses driver {driver!r}; use postgresql+psycopg://")
    raise BadDatabaseURLError(f"unsupported database URL {redact(parsed)!r} ({EXAMPLES})")


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with foreign keys and a busy timeout; PostgreSQL with pre-ping."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S})
    event.listen(engine, "handle_error", _unavailable)
    return engine


def _unavailable(context: ExceptionContext) -> DatabaseUnavailableError | None:
    """A database that cannot be reached, or that went away mid-statement, becomes one
    :class:`DatabaseUnavailableError` naming it, wherever it happens (not only at start-up).

    The connection is still invalidated as usual; pre-ping failures are left to the pool, which reconnects.
    """
    if context.is_pre_ping or not isinstance(context.sqlalchemy_exception, sa.exc.DBAPIError):
        return None
    assert context.engine is not None  # always set, connect failures included (SQLAlchemy 2)
    where, reason = redact(context.engine.url), scrub(str(context.original_exception), context.engine.url)
    if context.connection is None:  # the failure was in connecting
        return DatabaseUnavailableError(f"cannot connect to database {where}: {reason}")
    if context.is_disconnect:
        return DatabaseUnavailableError(f"lost the connection to database {where}: {reason}")
    return None


def project_home() -> Path:
    """``$TSLA_FORECAST_HOME`` (default ``~/.tsla-forecast``), resolved."""
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME).expanduser().resolve()


def _sqlite_engine(parsed: URL) -> Engine:
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        folder = path.parent.resolve()
        if not folder.is_dir() and not folder.is_relative_to(project_home()):
            raise BadDatabaseURLError(f"the folder of database {redact(parsed)} does not exist: create {folder} "
                                      "first (only folders under TSLA_FORECAST_HOME are created for you)")  # fmt: skip
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailableError(
                f"cannot create the folder for database {redact(parsed)}: {exc.strerror}"
            ) from None
        parsed = parsed.set(database=str(path))
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "handle_error", _unavailable)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    """Take over transaction control (so BEGIN is ours) and set the pragmas on every new connection."""
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    try:
        cursor.execute("SELECT sqrt(4)")
    except sqlite3.OperationalError:  # SQLite built without math functions: the recipes need SQRT
        dbapi_conn.create_function("sqrt", 1, _sqrt, deterministic=True)
    cursor.close()


def _sqrt(value: float | None) -> float | None:
    return None if value is None or value < 0 else math.sqrt(value)


def _on_sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock up front, so two writers queue on the busy timeout instead of failing."""
    mode = "IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """One write transaction: commit on exit, roll back on exception (``BEGIN IMMEDIATE`` on SQLite)."""
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A write transaction that is always rolled back: for "as if these rows were stored" reads."""
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        tx = conn.begin()
        try:
            yield conn
        finally:
            tx.rollback()


def check_connection(engine: Engine) -> None:
    """Open one connection and run ``SELECT 1``; raises :class:`DatabaseUnavailableError` on failure."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        reason = scrub(str(exc.orig) if exc.orig is not None else str(exc), engine.url)
        raise DatabaseUnavailableError(f"cannot connect to database {redact(engine.url)}: {reason}") from None
