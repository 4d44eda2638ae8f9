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


def _probe(mode: str, tmp_path: Path, preload: bool, monkeypatch: pytest.MonkeyPatch, **env: str):
    monkeypatch.setenv(preloaded.SWITCH, "1" if preload else "0")
    out = tmp_path / f"late-{preload}"
    result = preloaded.run(PROBE, [mode, str(out)], env={**os.environ, "PROBE_VALUE": "x", **env}, cwd=ROOT,
                           timeout=120)  # fmt: skip
    return result, out


@pytest.mark.parametrize("mode", ["0", "3", "raise"])
def test_a_forked_command_ends_as_a_fresh_process_does(tmp_path, monkeypatch, mode):
    """Same exit code, output and start, and the interpreter's shutdown: non-daemon threads joined, atexit run."""
    fresh, fresh_file = _probe(mode, tmp_path, False, monkeypatch)
    forked, forked_file = _probe(mode, tmp_path, True, monkeypatch)
    assert forked.returncode == fresh.returncode == (1 if mode == "raise" else int(mode))
    assert json.loads(forked.stdout) == json.loads(fresh.stdout) | {"argv": [mode, str(forked_file)]}
    assert json.loads(fresh.stdout)["imported_before"] == [], "our modules and Prefect are imported by the command"
    assert json.loads(fresh.stdout)["cwd"] == str(ROOT) and json.loads(fresh.stdout)["probe_env"] == "x"
    assert forked.stderr.splitlines()[0] == fresh.stderr.splitlines()[0] == "to stderr"
    assert forked.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1]
    assert ("ValueError: the probe failed" in forked.stderr) == (mode == "raise")
    assert forked.stderr.strip().endswith("atexit ran")
    assert forked_file.read_text() == fresh_file.read_text()


def test_a_forked_command_gets_the_import_path_its_environment_gives(tmp_path, monkeypatch):
    """``PYTHONPATH`` is the one import-time variable the fork applies itself, in the place the interpreter does."""
    monkeypatch.setenv(preloaded.SWITCH, "1")
    env = {"PYTHONPATH": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"}
    assert isinstance(preloaded.popen(PROBE, ["0", str(tmp_path / "x")], env=dict(os.environ) | env, cwd=ROOT,
                                      output=False), preloaded.PreloadedProcess)  # fmt: skip
    fresh, _ = _probe("0", tmp_path, False, monkeypatch, **env)
    forked, _ = _probe("0", tmp_path, True, monkeypatch, **env)
    assert json.loads(fresh.stdout)["sys_path_head"] == [str(ROOT), str(tmp_path / "a")]
    assert json.loads(forked.stdout)["sys_path_head"] == json.loads(fresh.stdout)["sys_path_head"]


def test_a_forked_command_in_its_own_session_dies_with_its_process_group(tmp_path, monkeypatch):
    """As ``start_new_session=True``: SIGKILL of its process group, then the exit status of a killed process."""
    monkeypatch.setenv(preloaded.SWITCH, "1")
    proc = preloaded.popen(PROBE, ["sleep", str(tmp_path / "late")], env=dict(os.environ), cwd=ROOT, new_session=True)
    assert isinstance(proc, preloaded.PreloadedProcess)
    assert proc.stdout.readline().startswith("{"), "the command started"
    assert proc.poll() is None
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_an_environment_the_preloaded_imports_did_not_see_gets_a_plain_subprocess(tmp_path, monkeypatch):
    monkeypatch.setenv(preloaded.SWITCH, "1")
    env = dict(os.environ) | {"TF_NUM_INTRAOP_THREADS": "3"}
    proc = preloaded.popen(PROBE, ["0", str(tmp_path / "late")], env=env, cwd=ROOT)
    assert isinstance(proc, subprocess.Popen)
    assert proc.communicate(timeout=60)[0] and proc.returncode == 0
