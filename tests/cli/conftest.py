"""Run the real console entry point in a subprocess and capture exit code, stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from forecaster.data.sources import generate_prices
from tests.fixtures import preloaded

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 300, fresh: bool = False
) -> subprocess.CompletedProcess:
    """``tsla-forecast ARGS`` as a user runs it, forked from a process that has already imported TensorFlow and the
    other libraries under our code (:mod:`tests.fixtures.preloaded`: about 6 s of CPU saved on a command that
    trains, 1 to 2 s on one that does not). A test of what a command imports or how fast it starts, or a reference run
    that forked runs are compared with, asks for a ``fresh`` process."""
    full_env = {**os.environ, **(env or {})}
    if not fresh:
        return preloaded.run("flows.cli", list(args), env=full_env, cwd=ROOT, timeout=timeout)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env=full_env,
    )  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def shared_prefect_api(prefect_api: str) -> str:
    """Every command reports to the session's Prefect API (no ephemeral server per command), except where a test
    takes a user's default environment (see ``prefect_api`` in tests/conftest.py)."""
    return prefect_api


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def price_csv(tmp_path) -> Path:
    """A clean CSV of 400 synthetic sessions in the repository's column layout."""
    path = tmp_path / "prices.csv"
    generate_prices(seed=5, n=400, start="2022-01-03").to_csv(path, index_label="date")
    return path
