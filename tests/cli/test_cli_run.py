"""`tsla-forecast run` as a user runs it: a subprocess per case, each with its own home and Prefect home.

A `run` that reaches the flow starts Prefect's temporary server (about 15 s), so those cases are few and marked
``slow``; argument and database errors fail before Prefect and take about a second.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import ROOT, run_cli
from tests.db.helpers import count_rows, table_snapshot
from tests.fixtures import preloaded

FORECAST_COLUMNS = ("horizon", "target_date", "point", "lo80", "hi80", "lo95", "hi95")


def _env(home: Path) -> dict[str, str]:
    return {
        "TSLA_FORECAST_HOME": str(home),
        "TSLA_FORECAST_FETCH_RETRIES": "0",
        "TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS": "[]",
        "PREFECT_HOME": os.environ["PREFECT_HOME"],  # one per session: its database is migrated once, not per run
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return _env(tmp_path / "home")


def _last_session(csv: Path) -> str:
    return str(pd.read_csv(csv)["date"].iloc[-1])


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _assert_one_clean_error(result: subprocess.CompletedProcess, code: int, *expected: str) -> str:
    assert result.returncode == code, result.stderr[-2000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr[-2000:]
    assert all(text in errors[0] for text in expected), errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    return errors[0]


def _imported_modules(stderr: str) -> set[str]:
    """Top-level package names from ``PYTHONPROFILEIMPORTTIME`` output (``import time: us | us | name``)."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def _forecasts(home: Path) -> pd.DataFrame:
    from db.repository import Repository

    repo = Repository.from_url(f"sqlite:///{home / 'forecast.db'}")
    try:
        rows = table_snapshot(repo, "forecasts")
        columns = [c.name for c in _forecast_table().columns]
    finally:
        repo.dispose()
    return pd.DataFrame(rows, columns=columns).sort_values("horizon").reset_index(drop=True)


def _forecast_table():
    from db.schema import Base

    return Base.metadata.tables["forecasts"]


# ------------------------------------------------------------------------------------------- happy path


@pytest.mark.slow
def test_run_on_a_fresh_home_creates_the_database_and_prints_forecasts(env, price_csv):
    home = Path(env["TSLA_FORECAST_HOME"])
    as_of = _last_session(price_csv)
    result = run_cli("run", "--source", f"csv:{price_csv}", "--as-of", as_of, "--preset", "smoke", "--horizon", "3",
                     env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"TSLA {as_of}: succeeded" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line.strip().startswith("h=")]) == 3
    assert "80% [" in result.stdout and "95% [" in result.stdout
    assert (home / "forecast.db").exists(), "the CLI creates the schema on a brand-new database"
    assert "new database: creating the schema" in result.stderr
    assert len(_forecasts(home)) == 3

    history = run_cli("history", env=env | {"PYTHONPROFILEIMPORTTIME": "1"}, fresh=True)
    assert history.returncode == 0, history.stderr[-3000:]
    assert "no matured forecasts yet" in history.stdout or "target_date" in history.stdout
    imported = _imported_modules(history.stderr)
    assert "sqlalchemy" in imported, "the import-time probe works"
    assert not imported & {"tensorflow", "keras"}, "history must not import TensorFlow"


@pytest.mark.slow
@pytest.mark.reports  # the report's own INFO lines are hidden too
def test_quiet_leaves_only_warnings_and_errors_prefects_included(env, price_csv):
    as_of = _last_session(price_csv)
    loud = env | {"PREFECT_LOGGING_LEVEL": "INFO"}  # what Prefect logs by default
    result = run_cli("-q", "run", "--source", f"csv:{price_csv}", "--as-of", as_of, "--preset", "smoke",
                     "--horizon", "3", env=loud)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"TSLA {as_of}: succeeded" in result.stdout
    info = [line for line in result.stderr.splitlines() if "INFO" in line]
    assert info == [], info[:5]


# ---------------------------------------------------------------------------------------- failing runs


@pytest.mark.slow
def test_unreachable_yahoo_is_one_error_line_pointing_at_csv(env):
    result = run_cli("run", "--source", "yahoo", "--as-of", "2024-06-03", "--preset", "smoke", env=env, timeout=180)
    _assert_one_clean_error(result, 1, "--source csv:PATH")
    assert not (Path(env["TSLA_FORECAST_HOME"]) / "models" / "TSLA").exists()


@pytest.mark.slow
def test_as_of_in_the_future_has_no_final_bar(env):
    result = run_cli("run", "--source", "synthetic", "--as-of", "2099-01-02", "--preset", "smoke", env=env)
    _assert_one_clean_error(result, 1, "no final bar yet")


def test_bad_retrain_value_is_a_usage_error(env):
    result = run_cli("run", "--retrain", "sometimes", env=env)
    _assert_one_clean_error(result, 2, "sometimes", "--retrain")


def test_unknown_preset(env):
    result = run_cli("run", "--source", "synthetic", "--preset", "nope", env=env)
    _assert_one_clean_error(result, 1, "unknown preset 'nope'")


SYNTHETIC_RUN = ("run", "--source", "synthetic", "--as-of", "2024-06-03", "--preset", "smoke")  # a day it has


def test_unreachable_database_is_one_error_line(env):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/x"
    result = run_cli(*SYNTHETIC_RUN, env=env | {"TSLA_FORECAST_DATABASE_URL": url})
    _assert_one_clean_error(result, 1, "cannot connect to database", "127.0.0.1:1")


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "postgresql+psycopg://u@host:notaport/x",
        "foo://x",
    ],
)
def test_malformed_database_url_is_one_error_line(env, url):
    result = run_cli(*SYNTHETIC_RUN, env=env | {"TSLA_FORECAST_DATABASE_URL": url})
    _assert_one_clean_error(result, 1, "database URL")


# --------------------------------------------------------------------------------------------- kill -9


def _start(args: list[str], env: dict[str, str]) -> preloaded.Process:
    """The run in a session of its own, forked as :func:`tests.cli.conftest.run_cli` forks a command."""
    proc = preloaded.popen("flows.cli", args, env={**os.environ, **env}, cwd=ROOT, new_session=True)
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep stdout drained
    return proc


def _kill_when(proc: preloaded.Process, marker: str, timeout: float) -> list[str]:
    """SIGKILL the process group (the CLI and Prefect's temporary server) as soon as stderr shows ``marker``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=timeout)
            if line is None:
                pytest.fail(f"the run ended before {marker!r}:\n{''.join(seen[-30:])}")
            seen.append(line)
            if marker in line:
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return seen


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_equals_an_uninterrupted_run(tmp_path, price_csv):
    from db.repository import Repository

    home_a, home_b = tmp_path / "a", tmp_path / "b"
    as_of = _last_session(price_csv)
    args = ["run", "--source", f"csv:{price_csv}", "--as-of", as_of, "--preset", "default", "--horizon", "3"]

    seen = _kill_when(_start(args, _env(home_a)), "default fit epoch 1/", timeout=240)
    assert any("full retrain" in line for line in seen)
    repo = Repository.from_url(f"sqlite:///{home_a / 'forecast.db'}")
    try:
        killed = repo.find_run("daily", "TSLA", pd.Timestamp(as_of).date(), status="running")
        assert killed is not None, "the kill landed mid-training: the run row is still 'running'"
        assert count_rows(repo)["forecasts"] == 0

        rerun = run_cli(*args, env=_env(home_a))
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        interrupted = repo.run(killed.id)
        assert interrupted.status == "failed" and "interrupted" in interrupted.error
        done = repo.find_run("daily", "TSLA", pd.Timestamp(as_of).date())
        assert done is not None and done.id != killed.id
        assert count_rows(repo)["model_artifacts"] == 1, "the killed run stored no bundle; the rerun stored one"
    finally:
        repo.dispose()
    assert not (home_a / "models").exists(), "bundles live in the database: nothing on disk to leave half-written"

    clean = run_cli(*args, env=_env(home_b), fresh=True)  # the reference of the forked runs
    assert clean.returncode == 0, clean.stderr[-3000:]

    resumed, uninterrupted = _forecasts(home_a), _forecasts(home_b)
    assert len(resumed) == len(uninterrupted) == 3
    assert resumed["target_date"].tolist() == uninterrupted["target_date"].tolist()
    numbers = ["point", "lo80", "hi80", "lo95", "hi95"]
    np.testing.assert_array_equal(resumed[numbers].to_numpy(float), uninterrupted[numbers].to_numpy(float))
