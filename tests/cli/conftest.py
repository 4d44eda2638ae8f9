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
    *args: str, env: dict | None = None, timeout: float = 300, trains: bool = False
) -> subprocess.CompletedProcess:
    """``tsla-forecast ARGS`` as a user runs it. A command that ``trains`` is forked from a process that has already
    imported TensorFlow and the other heavy libraries (:mod:`tests.fixtures.preloaded`), which saves about 5 s of
    CPU; a test of what a command imports or how fast it starts must leave ``trains`` off."""
    full_env = {**os.environ, **(env or {})}
    if trains:
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
