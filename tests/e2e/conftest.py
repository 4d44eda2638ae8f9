"""End-to-end fixtures: a real ``prefect server``, the ``tsla-forecast`` process pool, every deployment of
``deployment.yaml`` and a worker, all started as subprocesses with their own PREFECT_HOME and stopped by PID.

Nothing here relies on the process's Prefect settings (tests/flows runs a ``prefect_test_harness`` in the same
pytest session): every subprocess gets an explicit environment.

The ``stack`` runs on SQLite (Prefect's database in PREFECT_HOME, ours under TSLA_FORECAST_HOME) unless a test asks
for the production stack, PostgreSQL for both, with ``@pytest.mark.parametrize("stack", ["postgresql"],
indirect=True)``. pytest tears one stack down before it builds the other, so only one server runs at a time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFECT = BIN / "prefect"
POOL = "tsla-forecast"
HEALTH_TIMEOUT_S = 90
STOP_TIMEOUT_S = 10
LOG_TAIL_CHARS = 6000


def tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The end of a log file, for assertion messages."""
    if not path.exists():
        return f"<{path.name}: not written>"
    text = path.read_text(errors="replace")
    return text[-chars:]


def _children(pid: int) -> list[int]:
    """Every descendant PID of ``pid`` (Linux /proc; empty elsewhere)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name may hold spaces and parentheses: the fields after the last ')' are fixed
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - not ours any more
        return False
    return True


@dataclass
class Service:
    """A long-running subprocess in its own session (process group), with its output in ``log``."""

    name: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """SIGTERM to the process group (twice: a busy worker may ignore the first), wait, then SIGKILL; the same
        for descendants that left the group."""
        descendants = _children(self.proc.pid)
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        for pid in descendants:  # e.g. a flow-run process started in its own session
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not _alive(pid):
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + 5
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)


@dataclass
class Stack:
    """The running server and worker, the environment every CLI call gets, and the data folders."""

    tmp: Path
    env: dict[str, str]
    api_url: str
    home: Path
    db_url: str  # our forecast database, as the flow runs see it
    prefect_db_url: str | None = None  # PREFECT_API_DATABASE_CONNECTION_URL; None: SQLite in PREFECT_HOME
    services: list[Service] = field(default_factory=list)
    inbox: Any = None  # the loopback SMTP server's received messages (tests.report.conftest.Inbox)

    def logs(self) -> str:
        """The tail of every service log, for failure messages."""
        return "\n".join(f"----- {s.name} ({s.log}) -----\n{tail(s.log)}" for s in self.services)

    def cli(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command (argv) from the repository root with the stack's environment; output captured."""
        return subprocess.run(
            [str(a) for a in args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def check(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
        """:meth:`cli`, failing the test with both outputs and the service logs if it exits non-zero."""
        result = self.cli(*args, timeout=timeout)
        if result.returncode != 0:
            pytest.fail(f"{describe(result)}\n{self.logs()}", pytrace=False)
        return result

    def start(self, name: str, *args: str | Path) -> Service:
        """Start a long-running service in a new session (so that it and its children can be signalled)."""
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(a) for a in args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        service = Service(name, proc, log)
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        """Stop the services in reverse start order: the worker before the server."""
        while self.services:
            self.services.pop().stop()

    def api_get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.api_url}{path}", timeout=5) as response:  # noqa: S310 - loopback
            return response.read()

    def api_post(self, path: str, body: bytes = b"{}") -> bytes:
        request = urllib.request.Request(
            f"{self.api_url}{path}", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.read()


def describe(result: subprocess.CompletedProcess) -> str:
    """A command's argv, exit code and output, for failure messages."""
    return (
        f"$ {' '.join(map(str, result.args))}\nexit code {result.returncode}\n"
        f"----- stdout -----\n{result.stdout[-LOG_TAIL_CHARS:]}\n----- stderr -----\n{result.stderr[-LOG_TAIL_CHARS:]}"
    )


def stack_env(
    tmp: Path, port: int, home: Path, db_url: str | None = None, prefect_db_url: str | None = None
) -> dict[str, str]:
    """The environment of every subprocess: the caller's, minus any Prefect/tsla-forecast settings, plus ours.

    ``db_url`` becomes TSLA_FORECAST_DATABASE_URL and ``prefect_db_url`` PREFECT_API_DATABASE_CONNECTION_URL; left
    out, both databases are SQLite files (``<home>/forecast.db``, ``<PREFECT_HOME>/prefect.db``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TSLA_FORECAST_"))}
    env.update(
        PREFECT_HOME=str(tmp / "prefect"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # the scheduler would create runs of the cron deployments; one landing in the test's window would be
        # picked up by the worker and write a (failed, offline) run into the database under test
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        TSLA_FORECAST_HOME=str(home),
        TSLA_FORECAST_FETCH_RETRIES="0",
        TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS="[]",
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_ENABLE_ONEDNN_OPTS="0",
        PYTHONUNBUFFERED="1",
        PWD=str(ROOT),
    )
    if db_url:
        env["TSLA_FORECAST_DATABASE_URL"] = db_url
    if prefect_db_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_db_url
    return env


def wait_healthy(stack: Stack, server: Service, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Poll ``/api/health`` until it answers true, the server dies, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"prefect server exited with {server.proc.returncode}\n{stack.logs()}", pytrace=False)
        with contextlib.suppress(OSError):
            if stack.api_get("/health").strip() == b"true":
                return
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {timeout}s\n{stack.logs()}", pytrace=False)


def wait_worker_polling(stack: Stack, timeout: float = 60) -> None:
    """Wait until the pool reports a worker (so that a run is picked up at once, not after a cold start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker = stack.services[-1]
        if worker.proc.poll() is not None:
            pytest.fail(f"prefect worker exited with {worker.proc.returncode}\n{stack.logs()}", pytrace=False)
        with contextlib.suppress(OSError):
            if re.search(rb'"status"\s*:\s*"ONLINE"', stack.api_post(f"/work_pools/{POOL}/workers/filter")):
                return
        time.sleep(0.5)
    pytest.fail(f"no worker online in pool {POOL!r} after {timeout}s\n{stack.logs()}", pytrace=False)


def alert_env(smtp_port: int) -> dict[str, str]:
    """Failure alerts on, to a loopback SMTP server (report emails stay off, so every message is an alert)."""
    from tests.report.conftest import email_env

    return email_env(smtp_port) | {"TSLA_FORECAST_EMAIL_ENABLED": "false", "TSLA_FORECAST_ALERTS_ENABLED": "true"}


def asyncpg_url(url: str) -> str:
    """A PostgreSQL URL with the driver Prefect's server needs: ``postgresql+asyncpg://``."""
    return sa.engine.make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@contextlib.contextmanager
def build_stack(tmp: Path, db_url: str | None = None, prefect_db_url: str | None = None) -> Iterator[Stack]:
    """SMTP server → prefect server → database schema → pool → ``prefect deploy --all`` → worker, in ``tmp``;
    stopped (worker first) on exit. ``db_url``/``prefect_db_url``: see :func:`stack_env` (default: SQLite)."""
    from tests.report.conftest import start_smtp

    assert PREFECT.exists(), f"no prefect executable beside {sys.executable}"
    port = free_port()
    home = tmp / "home"
    home.mkdir()
    with warnings.catch_warnings():  # aiosmtpd warns that AUTH without TLS is unsafe: fine on loopback
        warnings.simplefilter("ignore", UserWarning)
        smtp, inbox = start_smtp()
    env = stack_env(tmp, port, home, db_url, prefect_db_url) | alert_env(smtp.port)
    s = Stack(
        tmp=tmp,
        env=env,
        api_url=f"http://127.0.0.1:{port}/api",
        home=home,
        db_url=db_url or f"sqlite:///{home / 'forecast.db'}",
        prefect_db_url=prefect_db_url,
        inbox=inbox,
    )
    try:
        server = s.start("server", PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port))
        # a brand-new database needs its schema first; the flow never creates it
        cli = BIN / "tsla-forecast"
        s.check(*([cli] if cli.exists() else [sys.executable, "-m", "flows.cli"]), "db", "upgrade")
        wait_healthy(s, server)
        s.check(PREFECT, "work-pool", "create", POOL, "--type", "process", "--overwrite")
        s.check(PREFECT, "deploy", "--prefect-file", "deployment.yaml", "--all", "--no-prompt", timeout=240)
        s.start("worker", PREFECT, "worker", "start", "--pool", POOL)
        wait_worker_polling(s)
        yield s
    finally:
        s.stop_all()
        smtp.stop()


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The running stack (:func:`build_stack`). One per session and backend: every e2e module shares the SQLite
    one (and its database). Parametrised indirectly with ``"postgresql"``, both Prefect's database and ours are
    fresh PostgreSQL databases (``postgres_url``), dropped after the stack stops."""
    backend = getattr(request, "param", "sqlite")
    tmp = tmp_path_factory.mktemp(f"e2e-{backend}")
    if backend == "sqlite":
        with build_stack(tmp) as s:
            yield s
        return
    assert backend == "postgresql", f"unknown stack backend {backend!r}"
    from tests.db.fixtures import postgres_database

    admin_url = request.getfixturevalue("postgres_url")
    with (
        postgres_database(admin_url) as prefect_db,
        postgres_database(admin_url) as forecast_db,
        build_stack(tmp, db_url=forecast_db, prefect_db_url=asyncpg_url(prefect_db)) as s,
    ):
        yield s
