"""One run per key: two runs of one day started together give one succeeded run, one champion and one set of
forecasts (separate processes, SQLite and PostgreSQL); a live run is never taken over, a dead one is."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from db.locks import RunLockTimeoutError
from db.repository import Repository
from flows.jobs.lifecycle import RunKey, tracked_run
from flows.settings import Settings
from tests.cli.conftest import ROOT
from tests.db.fixtures import migrated_url, postgres_template, sqlite_template  # noqa: F401 - fixtures
from tests.db.helpers import count_rows
from tests.db.test_concurrency import hold_in_another_process
from tests.fixtures import preloaded
from tests.flows.daily_job_proc import MARKER, TIMEOUT_S

DAY = dt.date(2024, 6, 3)


@contextmanager
def _started_together(url: str, home: Path, folder: Path, n: int) -> Iterator[list[preloaded.Process]]:
    """``n`` daily jobs of DAY in processes of their own (:mod:`tests.flows.daily_job_proc`), released together once
    all are imported and connected; any still running afterwards is killed."""
    go, ready = folder / "go", [folder / f"ready{i}" for i in range(n)]
    procs = [preloaded.popen("tests.flows.daily_job_proc", [url, str(home), str(DAY), str(r), str(go)],
                             env=dict(os.environ), cwd=ROOT) for r in ready]  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not all(r.exists() for r in ready):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                pytest.fail(f"the jobs did not all get ready: {[p.communicate() for p in procs]}")
            time.sleep(0.02)
        go.touch()
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=60)  # reaped, pipes closed


def _outcome(out: str, err: str) -> str:
    """What a job reported (:data:`tests.flows.daily_job_proc.MARKER`), or its output when it reported nothing."""
    lines = [line.removeprefix(MARKER) for line in out.splitlines() if line.startswith(MARKER)]
    return lines[-1] if lines else f"no result: {out[-1000:]} {err[-2000:]}"


def test_two_runs_of_one_day_at_once_give_one_run_one_champion_and_five_forecasts(migrated_url, tmp_path):  # noqa: F811
    with _started_together(migrated_url, tmp_path / "home", tmp_path, 2) as procs:
        with ThreadPoolExecutor(len(procs)) as pool:  # both pipes read at once: neither job blocks on a full pipe
            finished = list(pool.map(lambda p: p.communicate(timeout=TIMEOUT_S), procs))
        outcomes = sorted(_outcome(out, err) for out, err in finished)
        assert [p.wait() for p in procs] == [0, 0], outcomes
    assert outcomes == ["already_done", "succeeded"], "the second waits for the first, then finds it done"
    with Repository.from_url(migrated_url) as repo:
        runs = repo.find_runs("daily", "TSLA", DAY, status=None)
        assert [r.status for r in runs] == ["succeeded"], "no second run row, nothing marked interrupted"
        assert repo.champion("TSLA") is not None and count_rows(repo)["model_versions"] == 1
        assert count_rows(repo)["forecasts"] == 5, "one set of live forecasts"
        assert count_rows(repo)["model_artifacts"] == 1, "one bundle"


def test_a_live_run_is_never_taken_over_and_a_dead_one_is(repo, home):
    key, settings = RunKey("daily", "TSLA", DAY), Settings(run_lock_timeout=1)
    live = repo.start_run("daily", "TSLA", DAY)
    holder = hold_in_another_process(repo.engine.url.render_as_string(hide_password=False), key.name)
    try:
        with pytest.raises(RunLockTimeoutError, match=rf"daily run of TSLA 2024-06-03 is in progress in run {live} "):
            with tracked_run(repo, key, settings, details={}):
                pytest.fail("a run must not start while another run of its key is alive")
        assert repo.run(live).status == "running", "the live run is untouched"
    finally:
        holder.send_signal(signal.SIGKILL)  # the holder dies: the lock goes with it
        holder.communicate(timeout=30)  # reaped, its pipe closed
    with pytest.raises(RuntimeError, match="boom"), tracked_run(repo, key, settings, details={}) as run:
        raise RuntimeError("boom\nsecond line")
    assert repo.run(live).status == "failed" and repo.run(live).error.startswith("interrupted")
    assert repo.run(run.id).status == "failed" and repo.run(run.id).error == "RuntimeError: boom"
