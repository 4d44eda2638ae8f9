"""Flow tests: one Prefect test harness per session, a fresh home (SQLite + model store) per test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from db.repository import Repository


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


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
    return {t: repo.table_snapshot(t) for t in ("prices", "model_versions", "forecasts", "metrics")}
