"""Flow tests: the session's Prefect API (one for all test processes), a fresh home (SQLite + model store) per test.

``home`` and ``repo`` (tests/conftest.py) give an SQLite home. ``backend_home`` and ``backend_repo`` give the same
home on each backend (SQLite and PostgreSQL, see :data:`tests.db.fixtures.BACKENDS`): the flows read
:class:`flows.settings.Settings`, so ``TSLA_FORECAST_DATABASE_URL`` points them at the PostgreSQL database.
``make_home`` makes further homes on the same backend within one test, empty or as a :class:`HomeSnapshot` holds
them: ``take_snapshot`` runs a test's common first runs (day 1) once per test process and backend, and each test
starts from a copy.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pytest
import sqlalchemy as sa

from db.engine import sqlite_url
from db.repository import Repository
from tests.db.fixtures import (  # noqa: F401 - fixtures
    BACKENDS,
    postgres_database,
    postgres_template,
    sqlite_template,
)
from tests.db.helpers import table_snapshot


@dataclass(frozen=True)
class HomeSnapshot:
    """A home as some runs left it: its ``files`` (with the SQLite database) and, on PostgreSQL, a ``template``
    database; ``results``: what the runs returned (their paths are the build home's, under ``files``)."""

    files: Path
    results: list[dict[str, Any]]
    template: str | None = None


@dataclass(frozen=True)
class Snapshots:
    """A test process's snapshots by (name, backend), or the error that stopped one being made, and the session's
    PostgreSQL templates (``postgres_database`` contexts, dropped when the session ends)."""

    made: dict[tuple[str, str], HomeSnapshot | BaseException]
    templates: ExitStack


class HomeFactory(Protocol):
    def __call__(self, path: Path, start: HomeSnapshot | None = None) -> Repository: ...


SnapshotTaker = Callable[[str, Callable[[], list[dict[str, Any]]]], HomeSnapshot]

DAY1 = dt.date(2024, 6, 3)  # a Monday: the first run of many flow tests
SMOKE_ARGS = {"source": "synthetic:3", "preset": "smoke", "horizon": 3}  # the flow tests' usual parameters
ON_DAY1 = pytest.mark.xdist_group("flows-day1")  # the tests that start from day 1 share one test process


class Day1(NamedTuple):
    """A test's home as day 1's run left it: a repository over its database, its folder, that run's result."""

    repo: Repository
    home: Path
    first: dict[str, Any]


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
    """``make_home(path, start=None)``: make ``path`` the TSLA_FORECAST_HOME with a migrated database of ``backend``
    and return a repository over it (the flows use the same database).

    The settings are those of the ``home`` fixture (no fetch retries, a missing final bar fails at once, email off).
    SQLite: a copy of the migrated template at ``<path>/forecast.db`` (the default URL). PostgreSQL: a new database
    cloned from the migrated template, named by ``TSLA_FORECAST_DATABASE_URL``, dropped after the test. With
    ``start`` (a snapshot of this backend), the home's files and database are copies of the snapshot's instead.
    Each call switches the environment to the new home; every repository is disposed after the test.
    """
    if backend == "sqlite":
        template, admin_url = request.getfixturevalue("sqlite_template"), ""
    else:
        template, admin_url = request.getfixturevalue("postgres_template"), request.getfixturevalue("postgres_url")
    with ExitStack() as stack:

        def make(path: Path, start: HomeSnapshot | None = None) -> Repository:
            path.mkdir(parents=True, exist_ok=True)
            monkeypatch.setenv("TSLA_FORECAST_HOME", str(path))
            monkeypatch.setenv("TSLA_FORECAST_FETCH_RETRIES", "0")
            monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[]")  # a missing bar fails at once in tests
            monkeypatch.setenv("TSLA_FORECAST_EMAIL_ENABLED", "false")
            if start is not None:
                assert (start.template is None) == (backend == "sqlite"), f"a snapshot of another backend: {start}"
                assert backend != "sqlite" or (start.files / "forecast.db").exists(), f"no database in {start.files}"
                shutil.copytree(start.files, path, dirs_exist_ok=True)
            if backend == "sqlite":
                if start is None:
                    shutil.copyfile(template, path / "forecast.db")
                monkeypatch.delenv("TSLA_FORECAST_DATABASE_URL", raising=False)
                url = sqlite_url(path)
            else:
                clone_of = template if start is None else start.template
                url = stack.enter_context(postgres_database(admin_url, template=clone_of))
                monkeypatch.setenv("TSLA_FORECAST_DATABASE_URL", url)
            repo = Repository.from_url(url)
            stack.callback(repo.dispose)  # before the database is dropped (the stack unwinds in reverse)
            return repo

        yield make


@pytest.fixture(scope="session")
def home_snapshots() -> Iterator[Snapshots]:
    """The snapshots of this test process; their PostgreSQL templates are dropped at the end."""
    with ExitStack() as templates:
        yield Snapshots({}, templates)


@pytest.fixture
def take_snapshot(
    backend: str,
    make_home: HomeFactory,
    home_snapshots: Snapshots,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> SnapshotTaker:
    """``take_snapshot(name, runs)``: the snapshot ``name`` of this backend, made on first use in this test process
    by ``runs()`` (flows run in a new home) and kept for the session.

    The first runs of many tests are the same (day 1: a full fit, the forecasts); a test that starts
    from a copy of the home those runs left skips them. Tests sharing a snapshot share an ``xdist_group`` so that it
    is made once per backend, and with reports off (``reports_setting`` in tests/conftest.py), whichever test makes
    it. Call it before the test's own ``make_home``: each call switches the environment. A snapshot that failed to be
    made fails the later tests that need it at once, with the first error.
    """

    made = home_snapshots.made

    def take(name: str, runs: Callable[[], list[dict[str, Any]]]) -> HomeSnapshot:
        if (name, backend) not in made:
            try:
                made[name, backend] = _build(name, runs)
            except BaseException as exc:
                made[name, backend] = exc
                raise
        snapshot = made[name, backend]
        if isinstance(snapshot, BaseException):
            pytest.fail(f"snapshot {name!r} on {backend} could not be made: {snapshot!r}", pytrace=False)
        return snapshot

    def _build(name: str, runs: Callable[[], list[dict[str, Any]]]) -> HomeSnapshot:
        built = tmp_path_factory.mktemp(f"snapshot-{name}-{backend}") / "home"
        repo = make_home(built)
        with pytest.MonkeyPatch.context() as env:  # the same snapshot whichever test makes it first
            env.setenv("TSLA_FORECAST_REPORTS_ENABLED", "false")
            results = runs()
        repo.dispose()
        if backend == "sqlite":
            return HomeSnapshot(built, results)
        admin_url, source = request.getfixturevalue("postgres_url"), repo.engine.url.database
        _close_connections(admin_url, source)  # a template must have none
        template = home_snapshots.templates.enter_context(postgres_database(admin_url, template=source))
        return HomeSnapshot(built, results, sa.make_url(template).database)

    return take


def _close_connections(admin_url: str, database: str | None) -> None:
    """End every connection to ``database`` (the flows' pools may keep one open)."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database})  # fmt: skip
    finally:
        admin.dispose()


@pytest.fixture
def day1_snapshot(take_snapshot: SnapshotTaker) -> HomeSnapshot:
    """A new home after ``daily_forecast(as_of=DAY1, **SMOKE_ARGS)``, on each backend: run once per test process
    (mark the tests with ``ON_DAY1``)."""

    def first_day() -> list[dict[str, Any]]:
        from flows.daily import daily_forecast

        return daily_forecast(as_of=DAY1, **SMOKE_ARGS)

    return take_snapshot("day1", first_day)


@pytest.fixture
def day1(make_home: HomeFactory, day1_snapshot: HomeSnapshot, tmp_path: Path) -> Day1:
    """The test's home (``tmp_path``) as day 1's run leaves a new home (see ``day1_snapshot``), and a copy of that
    run's result."""
    return Day1(make_home(tmp_path, start=day1_snapshot), tmp_path, copy.deepcopy(day1_snapshot.results[0]))


@pytest.fixture
def backend_repo(make_home: HomeFactory, tmp_path: Path) -> Repository:
    """A repository over the database of ``backend_home`` (``tmp_path``), on each backend."""
    return make_home(tmp_path)


@pytest.fixture
def backend_home(backend_repo: Repository, tmp_path: Path) -> Path:
    """A fresh TSLA_FORECAST_HOME (``tmp_path``) with a migrated database, on each backend."""
    return tmp_path


def store_digest(home: Path) -> dict[str, str]:
    """sha256 of every file of the home's model bundles, by relative path (for "nothing changed" checks): the bundle
    cache (``cache/<sha256>/``, unpacked from ``model_artifacts``, the store of record, which ``db_state`` holds)."""
    root = home / "cache"
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def store_changes(before: dict[str, str], home: Path, repo: Repository) -> list[str]:
    """The bundle-cache files that changed, vanished or appeared since ``before`` (a :func:`store_digest`), less
    the folders that appeared whole and verified for a stored version: a run that loads a registered version
    unpacks it into ``cache/<its sha256>/`` (checked against that sha256 on use), and a failed run may leave that.
    Nothing else may appear: no other folder, and no file in a folder that does not match its sha256."""
    from forecaster.data.cache import BundleCache

    with repo.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT artifact_sha256 FROM model_versions")).scalars())
    after, cache = store_digest(home), BundleCache(home / "cache")
    accepted = {sha for sha in {p.split("/")[0] for p in after} if sha in stored and cache.verified(sha)}
    changed = [p for p in sorted(before) if after.get(p) != before[p]]
    return changed + [p for p in sorted(after) if p not in before and p.split("/")[0] not in accepted]


def db_state(repo: Repository) -> dict[str, list]:
    """Every row of every table except the runs (whose own failed row is expected)."""
    tables = ("prices", "price_revisions", "model_versions", "model_artifacts", "forecasts", "metrics")
    return {t: table_snapshot(repo, t) for t in tables}
