"""Shared helpers for the benchmark scripts: the real data, environment and JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED_CSV = ROOT.parent / "shared" / "data" / "tsla_daily.csv"
RESULTS = ROOT / "benchmarks" / "results"


def load_tsla(until: str | None = None):
    """The real TSLA prices from ../shared (validated), optionally cut at ``until``."""
    from forecaster.data.sources import CsvSource
    from forecaster.data.validation import ensure_valid

    if not SHARED_CSV.exists():
        raise SystemExit(f"benchmark needs {SHARED_CSV} (the ../shared data set)")
    prices = ensure_valid(CsvSource(SHARED_CSV).fetch("TSLA"))
    return prices.loc[:until] if until else prices


def machine() -> dict:
    """Where the figures were measured."""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}


def write_json(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path


def new_postgres_database(pg_url: str | None, prefix: str) -> str | None:
    """A fresh, empty database ``<prefix>_<random>`` on the server of ``pg_url``, dropped when this process exits;
    None when the server is unreachable."""
    import atexit
    import sys
    import uuid

    import sqlalchemy as sa

    if not pg_url:
        return None
    try:
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - no server: the caller falls back to SQLite
        print(f"PostgreSQL not reachable ({type(exc).__name__}): SQLite only", file=sys.stderr)
        return None
    atexit.register(_drop_postgres_database, pg_url, name)
    return sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(pg_url: str, name: str) -> None:
    """Drop a benchmark's database (its connections too); a server gone by now leaves it, with a line that says so."""
    import sys

    import sqlalchemy as sa

    try:
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - at exit: say what was left behind, never raise
        print(f"could not drop PostgreSQL database {name} ({type(exc).__name__}: {exc})", file=sys.stderr)


def worktree(rev: str, folder: Path) -> Path:
    """A git worktree of ``rev`` in ``folder`` (the caller removes it: ``git worktree remove --force``)."""
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(folder), rev], cwd=ROOT, check=True)
    return folder
