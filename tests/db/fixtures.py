"""Database fixtures shared by the db and CLI tests: fresh SQLite files and fresh PostgreSQL databases.

Every PostgreSQL database gets a unique name (pid + random suffix) and is dropped afterwards, so concurrent
test runs never collide. Migrated databases are cloned from one migrated template per session
(``CREATE DATABASE ... TEMPLATE``, about 30 ms), so each test starts from its own clean, current schema.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from db import migrate
from db.engine import make_engine
from db.repository import Repository

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def unique_name(prefix: str) -> str:
    """A database name no other test run uses."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


@contextmanager
def postgres_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """Create a uniquely named database (optionally a copy of ``template``), yield its URL, then drop it."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = unique_name("tsla_test")
    clause = f" TEMPLATE {template}" if template else ""
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}{clause}")
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    """Name of a PostgreSQL database migrated to head, to clone per test."""
    with postgres_database(postgres_url) as url:
        migrate.upgrade(url)
        yield make_url(url).database or ""


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head, to copy per test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "forecast.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, EMPTY database: a temporary SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'forecast.db'}"
        return
    with postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database already at the head revision, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "forecast.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    with postgres_database(request.getfixturevalue("postgres_url"), template=template) as url:
        yield url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on a migrated database; disposed after the test."""
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def repo(engine: Engine) -> Repository:
    """A repository on a migrated database."""
    return Repository(engine)
