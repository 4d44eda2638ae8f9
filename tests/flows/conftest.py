"""Flow tests: the session's Prefect API (one for all test processes), a fresh home (SQLite + model store) per test.

``home`` and ``repo`` (tests/conftest.py) give an SQLite home. ``backend_home`` and ``backend_repo`` give the same
home on each backend (SQLite and PostgreSQL, see :data:`tests.db.fixtures.BACKENDS`): the flows read
:class:`flows.settings.Settings`, so ``TSLA_FORECAST_DATABASE_URL`` points them at the PostgreSQL database.
``make_home`` makes further homes on the same backend within one test.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from db.engine import sqlite_url
from db.repository import Repository
from tests.db.fixtures import BACKENDS, postgres_database, postgres_template, sqlite_template  # noqa: F401 - fixtures
from tests.db.helpers import table_snapshot

HomeFactory = Callable[[Path], Repository]


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(prefect_api: str) -> str:
    """Every flow test reports to the session's Prefect API (tests/conftest.py)."""
    return prefect_api


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of the test: ``sqlite`` or ``postgresql`` (marked ``postgres``)."""
    return request.param


@pytest.fixture
def make_home(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[HomeFactory]:
    """``make_home(path)``: make ``path`` the TSLA_FORECAST_HOME with a migrated database of ``backend`` and return
    a repository over it (the flows use the same database).

    The settings are those of the ``home`` fixture (no fetch retries, a missing final bar fails at once, email off).
    SQLite: a copy of the migrated template at ``<path>/forecast.db`` (the default URL). PostgreSQL: a new database
    cloned from the migrated template, named by ``TSLA_FORECAST_DATABASE_URL``, dropped after the test. Each call
    switches the environment to the new home; every repository is disposed after the test.
    """
    if backend == "sqlite":
        template, admin_url = request.getfixturevalue("sqlite_template"), ""
    else:
        template, admin_url = request.getfixturevalue("postgres_template"), request.getfixturevalue("postgres_url")
    with ExitStack() as stack:

        def make(path: Path) -> Repository:
            path.mkdir(parents=True, exist_ok=True)
            monkeypatch.setenv("TSLA_FORECAST_HOME", str(path))
            monkeypatch.setenv("TSLA_FORECAST_FETCH_RETRIES", "0")
            monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[]")  # a missing bar fails at once in tests
            monkeypatch.setenv("TSLA_FORECAST_EMAIL_ENABLED", "false")
            if backend == "sqlite":
                shutil.copyfile(template, path / "forecast.db")
                monkeypatch.delenv("TSLA_FORECAST_DATABASE_URL", raising=False)
                url = sqlite_url(path)
            else:
                url = stack.enter_context(postgres_database(admin_url, template=template))
                monkeypatch.setenv("TSLA_FORECAST_DATABASE_URL", url)
            repo = Repository.from_url(url)
            stack.callback(repo.dispose)  # before the database is dropped (the stack unwinds in reverse)
            return repo

        yield make


@pytest.fixture
def backend_repo(make_home: HomeFactory, tmp_path: Path) -> Repository:
    """A repository over the database of ``backend_home`` (``tmp_path``), on each backend."""
    return make_home(tmp_path)


@pytest.fixture
def backend_home(backend_repo: Repository, tmp_path: Path) -> Path:
    """A fresh TSLA_FORECAST_HOME (``tmp_path``) with a migrated database, on each backend."""
    return tmp_path


def store_digest(home: Path) -> dict[str, str]:
    """sha256 of every file in the model store, by relative path (for "nothing changed" checks)."""
    root = home / "models"
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def db_state(repo: Repository) -> dict[str, list]:
    """Every row of every table except the runs (whose own failed row is expected)."""
    return {t: table_snapshot(repo, t) for t in ("prices", "model_versions", "forecasts", "metrics")}
