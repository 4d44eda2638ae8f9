"""Run locks that die with their holder: at most one process runs one run key at a time.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated connection. The server
  releases it when that connection ends, so a process that is killed (or a machine that dies) frees it.
* SQLite: ``fcntl.flock`` on ``<database file>.locks/<name>.lock``. The kernel releases it when the process dies.

No lease and no heartbeat: there is no clock to tune, and a dead holder frees the key at once. Waiting is bounded
(``timeout``), then :class:`RunLockTimeoutError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from db.errors import DatabaseError, DatabaseUnavailableError

POLL_S = 0.2


class RunLockTimeoutError(DatabaseError):
    """Another live process held the run lock for longer than the caller agreed to wait."""


@contextlib.contextmanager
def hold_lock(engine: Engine, name: str, timeout: float) -> Iterator[None]:
    """Hold the lock ``name`` (waiting up to ``timeout`` seconds) for the duration of the block."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, name, timeout):
            yield
        return
    path = lock_file(engine, name)
    with _file_lock(path, name, timeout) if path is not None else contextlib.nullcontext():
        yield


def lock_file(engine: Engine, name: str) -> Path | None:
    """The lock file of ``name`` beside an SQLite database file; None for an in-memory database."""
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}.locks") / f"{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.lock"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _wait(attempt: Callable[[], bool], name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not attempt():
        if time.monotonic() >= deadline:
            raise RunLockTimeoutError(f"lock {name!r} is held by another process (waited {timeout:g}s)")
        time.sleep(POLL_S)


@contextlib.contextmanager
def _advisory_lock(engine: Engine, name: str, timeout: float) -> Iterator[None]:
    key = advisory_key(name)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        _wait(lambda: bool(conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})), name, timeout)
        try:
            yield
        finally:
            _advisory_unlock(conn, key)
    finally:
        conn.close()


def _advisory_unlock(conn: Connection, key: int) -> None:
    """Release ``key``; if the connection is broken, discard it (the server has dropped the lock with it)."""
    try:
        conn.scalar(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    except (sa.exc.DBAPIError, DatabaseUnavailableError):
        conn.invalidate()


@contextlib.contextmanager
def _file_lock(path: Path, name: str, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    held: list[int] = []

    def attempt() -> bool:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if _is_current(fd, path):
                held.append(fd)
                return True
            os.close(fd)  # the holder removed this file as it let go: lock the new one

    _wait(attempt, name, timeout)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before unlocking, so no one locks a file that is no longer there
        os.close(held[0])


def _is_current(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
