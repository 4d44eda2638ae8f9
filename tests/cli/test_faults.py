"""kill -9 and a database that goes away, at every phase of a daily run, as a user's ``tsla-forecast run`` meets them.

Each case runs the real command in a subprocess through :mod:`tests.fixtures.failpoints`, which pauses the run at
one named phase; the test then kills the process group with SIGKILL, or stops the PostgreSQL server (a throw-away
one, :class:`tests.fixtures.pgserver.ThrowawayPostgres`, ``pg_ctl stop -m immediate``) and lets the run go on.
Afterwards nothing of the run may be stored, and the next run, on the same database, must store exactly what an
uninterrupted run stores: the same prices and model version, and bit-identical forecasts.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from db import migrate
from db.engine import make_engine
from db.schema import Base
from forecaster.data.sources import generate_prices
from tests.cli.conftest import ROOT, run_cli
from tests.cli.test_cli_run import _assert_one_clean_error, _env, _kill_when
from tests.db.fixtures import unique_name
from tests.fixtures import preloaded
from tests.fixtures.failpoints import MARKER, RESUME_ENV
from tests.fixtures.pgserver import ThrowawayPostgres

pytestmark = pytest.mark.slow
AS_OF = "2023-07-14"  # the last of the 400 sessions from 2022-01-03
TABLES = Base.metadata.tables
NUMBERS = ("point", "lo80", "hi80", "lo95", "hi95")


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "prices.csv"
    generate_prices(seed=5, n=400, start="2022-01-03").to_csv(path, index_label="date")
    return path


def _args(csv: Path) -> list[str]:
    return ["run", "--source", f"csv:{csv}", "--as-of", AS_OF, "--preset", "smoke", "--horizon", "3"]


def _run_env(home: Path, url: str | None) -> dict[str, str]:
    """The CLI's environment: its own home, Prefect home and temporary folder (checked for leftovers)."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env = _env(home) | {"TMPDIR": str(home / "tmp")}
    return env | {"TSLA_FORECAST_DATABASE_URL": url} if url else env


def _run(csv: Path, home: Path, url: str | None = None, fresh: bool = False) -> subprocess.CompletedProcess:
    """The command, forked (:func:`tests.cli.conftest.run_cli`), or in a ``fresh`` process."""
    return run_cli(*_args(csv), env=_run_env(home, url), timeout=600, fresh=fresh)


def _start_paused(phase: str, csv: Path, home: Path, url: str | None) -> preloaded.Process:
    """The run, paused at ``phase`` until ``home/resume`` exists (see :mod:`tests.fixtures.failpoints`)."""
    env = _run_env(home, url) | {RESUME_ENV: str(home / "resume")}
    return preloaded.popen("tests.fixtures.failpoints", [phase, *_args(csv)], env={**os.environ, **env}, cwd=ROOT,
                           new_session=True)  # fmt: skip


@dataclass(frozen=True)
class Stored:
    """What a database holds after runs: comparable rows (no ids, timestamps or archive bytes) and run statuses."""

    forecasts: list[tuple]
    prices: list[tuple]
    versions: list[tuple]
    artifacts: int
    runs: list[tuple[str, str]]  # (status, the error up to its first colon)

    def same_history_as(self, other: Stored) -> None:
        """Everything but the runs equals ``other``'s; forecasts bit for bit."""
        assert self.prices == other.prices
        assert self.versions == other.versions and self.artifacts == other.artifacts == 1
        assert self.forecasts == other.forecasts, "forecasts must be bit-identical to an uninterrupted run"


def _stored(url: str) -> Stored:
    f, p, v, a, r = (TABLES[t] for t in ("forecasts", "prices", "model_versions", "model_artifacts", "runs"))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:

            def rows(query: sa.Select) -> list[tuple]:
                return [tuple(row) for row in conn.execute(query)]

            runs = rows(sa.select(r.c.status, r.c.error).order_by(r.c.id))
            return Stored(
                forecasts=rows(sa.select(f.c.horizon, f.c.target_date, f.c.model, *(f.c[n] for n in NUMBERS))
                               .order_by(f.c.horizon)),
                prices=rows(sa.select(p.c.date, p.c.open, p.c.high, p.c.low, p.c.close, p.c.volume).order_by(p.c.date)),
                versions=rows(sa.select(v.c.kind, v.c.status, v.c.train_start, v.c.train_end).order_by(v.c.id)),
                artifacts=int(conn.scalar(sa.select(sa.func.count()).select_from(a)) or 0),
                runs=[(status, (error or "").split(":")[0]) for status, error in runs],
            )  # fmt: skip
    finally:
        engine.dispose()


def _nothing_stored(url: str) -> None:
    stored = _stored(url)
    assert stored.forecasts == stored.prices == stored.versions == [] and stored.artifacts == 0, stored
    assert all(status != "succeeded" for status, _ in stored.runs), stored.runs


def _no_leftover_files(home: Path) -> None:
    """No bundle folder, temporary or otherwise, in the home, its cache or the process's temporary folder."""
    leftovers = [p for p in (home / "tmp").rglob("*") if "bundle" in p.name]
    leftovers += [p for p in home.glob("models/**/*")] + [p for p in home.glob("cache/.*")]
    assert leftovers == [], leftovers


def _uninterrupted_run(csv: Path, home: Path) -> Stored:
    result = _run(csv, home, fresh=True)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = _stored(f"sqlite:///{home / 'forecast.db'}")
    assert len(stored.forecasts) == 3 and stored.runs == [("succeeded", "")]
    return stored


@pytest.fixture(scope="module")
def uninterrupted(csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Stored:
    """What one uninterrupted run stores (SQLite; a fresh home; a fresh process, the reference of the forked runs).

    It is run once per session: the pytest-xdist processes share it through a file in the session's temporary folder
    (the prices are the same seeded series in every process, and nothing stored depends on the file's path)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return _uninterrupted_run(csv, tmp_path_factory.mktemp("uninterrupted"))
    shared = tmp_path_factory.getbasetemp().parent / "faults-uninterrupted.pickle"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not shared.exists():
            partial = shared.with_suffix(f".{os.getpid()}")
            partial.write_bytes(pickle.dumps(_uninterrupted_run(csv, tmp_path_factory.mktemp("uninterrupted"))))
            partial.replace(shared)  # whole or absent, even if this process dies while writing
        return pickle.loads(shared.read_bytes())  # noqa: S301 - written by this session's own test process


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """A throw-away PostgreSQL server for this module (its own data folder and port)."""
    server = ThrowawayPostgres()
    server.start()
    yield server
    server.cleanup()


def _fresh_database(server: ThrowawayPostgres) -> str:
    """A new, migrated database on ``server``; its URL."""
    name = unique_name("faults")
    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    url = sa.engine.make_url(server.url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


# ---------------------------------------------------------------------------------------------- kill -9


@pytest.mark.parametrize(
    ("phase", "backend"),
    [
        pytest.param("packing", "sqlite", id="packing-sqlite"),
        pytest.param("packed", "sqlite", id="packed-sqlite"),
        pytest.param("committing", "sqlite", id="committing-sqlite"),
        pytest.param("committing", "postgresql", id="committing-postgresql", marks=pytest.mark.postgres),
        pytest.param("committed", "sqlite", id="committed-sqlite"),
    ],
)
def test_sigkill_at_a_phase_then_rerun_equals_an_uninterrupted_run(phase, backend, csv, tmp_path, uninterrupted,
                                                                   request):  # fmt: skip
    home = tmp_path / "home"
    url = (
        _fresh_database(request.getfixturevalue("postgres_server"))
        if backend == "postgresql"
        else f"sqlite:///{home / 'forecast.db'}"
    )
    proc = _start_paused(phase, csv, home, url)
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep stdout drained
    _kill_when(proc, f"{MARKER} {phase}", timeout=300)

    if phase == "committed":
        assert _stored(url).runs == [("succeeded", "")], "killed after the commit: the run is stored whole"
    else:
        _nothing_stored(url)
        assert [status for status, _ in _stored(url).runs] == ["running"], "the killed run's row is left running"

    rerun = _run(csv, home, url)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _stored(url)
    after.same_history_as(uninterrupted)
    if phase == "committed":
        assert "already_done" in rerun.stdout and after.runs == [("succeeded", "")]
    else:
        assert after.runs == [("failed", "interrupted"), ("succeeded", "")]
    _no_leftover_files(home)


# ------------------------------------------------------------------------------------ the database goes away


def _error_names_the_database(result: subprocess.CompletedProcess, url: str) -> None:
    where = sa.engine.make_url(url).render_as_string(hide_password=True)
    line = _assert_one_clean_error(result, 1, "database", where)
    assert "connect" in line or "connection" in line, line


def _wait_for(proc: subprocess.Popen, marker: str) -> list[str]:
    """The stderr lines of ``proc`` up to and including the one that shows ``marker`` (pytest-timeout bounds it)."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            return seen
    proc.wait()
    pytest.fail(f"the run ended before {marker!r}:\n{''.join(seen[-30:])}")


@pytest.mark.postgres
@pytest.mark.parametrize("phase", ["before-the-command", "starting", "trained", "committing"])
def test_database_stopped_at_a_phase_fails_cleanly_and_the_next_run_is_whole(phase, csv, tmp_path, uninterrupted,
                                                                             postgres_server):  # fmt: skip
    home = tmp_path / "home"
    url = _fresh_database(postgres_server)
    try:
        if phase == "before-the-command":
            postgres_server.stop()
            result = _run(csv, home, url)
        else:
            proc = _start_paused(phase, csv, home, url)
            seen = _wait_for(proc, f"{MARKER} {phase}")
            postgres_server.stop()
            (home / "resume").touch()
            stdout, stderr = proc.communicate(timeout=300)
            result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "".join(seen) + stderr)
    finally:
        postgres_server.start()
    _error_names_the_database(result, url)

    _nothing_stored(url)
    rerun = _run(csv, home, url)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _stored(url)
    after.same_history_as(uninterrupted)
    statuses = [status for status, _ in after.runs]
    if phase in ("trained", "committing"):  # the run row could not be marked failed: the rerun took it over
        assert after.runs[0] == ("failed", "interrupted") and statuses[1:] == ["succeeded"]
    else:
        assert statuses == ["succeeded"], "the run stopped before it was recorded"
    _no_leftover_files(home)
