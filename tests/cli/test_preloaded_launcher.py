"""The test launcher that forks CLI commands from a process with TensorFlow imported (:mod:`tests.fixtures.preloaded`)
must leave a command exactly as a fresh ``python -m`` runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT
from tests.fixtures import preloaded

PROBE = "tests.fixtures.preloaded_probe"
PER_RUN = ("argv", "numpy_draw", "forked")  # what differs between any two runs, or tells fresh from forked


@pytest.fixture(autouse=True)
def launcher_on(monkeypatch):
    """These tests exercise the launcher whatever TSLA_FORECAST_TEST_PRELOADED says."""
    monkeypatch.setenv(preloaded.SWITCH, "1")


def _probe(mode: str, tmp_path: Path, fork: bool, monkeypatch: pytest.MonkeyPatch, **env: str):
    monkeypatch.setenv(preloaded.SWITCH, "1" if fork else "0")
    out = tmp_path / f"late-{fork}"
    out.unlink(missing_ok=True)
    result = preloaded.run(PROBE, [mode, str(out)], env={**os.environ, "PROBE_VALUE": "x", **env}, cwd=ROOT,
                           timeout=120)  # fmt: skip
    started = json.loads(result.stdout.splitlines()[0])
    assert started.pop("forked") == fork, "the run went the way the test asked"
    return result, started, out


@pytest.mark.parametrize("mode", ["0", "3", "raise"])
def test_a_forked_command_ends_as_a_fresh_process_does(tmp_path, monkeypatch, mode):
    """Same exit code, output and start, and the interpreter's shutdown: non-daemon threads joined, atexit run."""
    fresh, fresh_start, fresh_file = _probe(mode, tmp_path, False, monkeypatch)
    forked, forked_start, forked_file = _probe(mode, tmp_path, True, monkeypatch)
    assert forked.returncode == fresh.returncode == (1 if mode == "raise" else int(mode))
    assert {k: v for k, v in forked_start.items() if k not in PER_RUN} == {
        k: v for k, v in fresh_start.items() if k not in PER_RUN
    }
    assert fresh_start["imported_before"] == [], "our modules and Prefect are imported by the command"
    assert fresh_start["cwd"] == str(ROOT) and fresh_start["probe_env"] == "x"
    assert forked.stderr.splitlines()[0] == fresh.stderr.splitlines()[0] == "to stderr"
    assert forked.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1] == "atexit ran"
    assert ("ValueError: the probe failed" in forked.stderr) == (mode == "raise")
    assert forked_file.read_text() == fresh_file.read_text()


def test_a_forked_command_gets_the_import_path_its_environment_gives(tmp_path, monkeypatch):
    """``PYTHONPATH`` is the one import-time variable the fork applies itself, where the interpreter puts it."""
    env = {"PYTHONPATH": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"}
    _, fresh, _ = _probe("0", tmp_path, False, monkeypatch, **env)
    _, forked, _ = _probe("0", tmp_path, True, monkeypatch, **env)
    assert fresh["sys_path"][:3] == [str(ROOT), str(tmp_path / "a"), str(tmp_path / "b")]
    assert forked["sys_path"] == fresh["sys_path"]


def test_forked_commands_draw_their_own_numpy_random_state(tmp_path, monkeypatch):
    draws = {_probe("0", tmp_path, True, monkeypatch)[1]["numpy_draw"] for _ in range(2)}
    assert len(draws) == 2, "two forks drew the same number: they share the server's random state"


def test_a_forked_command_in_its_own_session_dies_with_its_process_group(tmp_path):
    """As ``start_new_session=True``: SIGKILL of its process group, then the exit status of a killed process."""
    proc = preloaded.popen(PROBE, ["sleep", str(tmp_path / "late")], env=dict(os.environ), cwd=ROOT, new_session=True)
    assert isinstance(proc, preloaded.PreloadedProcess)
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0), "the session is taken before popen returns"
    assert proc.stdout.readline().startswith("{"), "the command started"
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_a_folder_that_does_not_exist_fails_like_popen(tmp_path):
    with pytest.raises(FileNotFoundError):
        subprocess.Popen(["true"], cwd=tmp_path / "missing")
    with pytest.raises(OSError, match="FileNotFoundError"):
        preloaded.popen(PROBE, ["0", str(tmp_path / "late")], env=dict(os.environ), cwd=tmp_path / "missing")


def test_the_environment_of_a_test_process_that_imported_the_same_libraries_forks(tmp_path):
    """TensorFlow and scikit-learn set variables as they import; a test process that has imported them passes
    those on, and the command must still fork (as every CLI test's command does)."""
    import sklearn  # noqa: F401
    import tensorflow  # noqa: F401

    assert "KMP_DUPLICATE_LIB_OK" in os.environ, "the imports set it"
    proc = preloaded.popen(PROBE, ["0", str(tmp_path / "late")], env=dict(os.environ), cwd=ROOT, output=False)
    assert isinstance(proc, preloaded.PreloadedProcess)
    assert proc.wait(timeout=60) == 0


def test_an_environment_the_preloaded_imports_did_not_see_runs_plain_and_says_so(tmp_path):
    env = dict(os.environ) | {"TF_NUM_INTRAOP_THREADS": "3", "TSLA_FORECAST_HOME": str(tmp_path)}
    with pytest.warns(preloaded.PlainSubprocessWarning, match=r"another environment \(TF_NUM_INTRAOP_THREADS\)"):
        proc = preloaded.popen(PROBE, ["0", str(tmp_path / "late")], env=env, cwd=ROOT)
    assert isinstance(proc, subprocess.Popen)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and json.loads(out.splitlines()[0])["forked"] is False
