"""One run per key: two runs of one day started together give one succeeded run, one champion and one set of
forecasts (separate processes, SQLite and PostgreSQL); a live run is never taken over, a dead one is."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import signal
from pathlib import Path
from typing import Any

import pytest

from db.locks import RunLockTimeoutError
from db.repository import Repository
from flows.jobs.daily import JobParams, run_ticker
from flows.jobs.lifecycle import RunKey, tracked_run
from flows.settings import Settings
from tests.db.fixtures import migrated_url, postgres_template, sqlite_template  # noqa: F401 - fixtures
from tests.db.helpers import count_rows
from tests.db.test_concurrency import hold_in_another_process

DAY = dt.date(2024, 6, 3)
TIMEOUT_S = 300


def _daily_run(url: str, home: str, barrier: Any, results: Any) -> None:
    """One ``tsla-forecast run --as-of DAY`` in its own process (the job itself, without Prefect)."""
    settings = Settings(home=Path(home), database_url=url, run_lock_timeout=TIMEOUT_S)
    params = JobParams("TSLA", DAY, "synthetic:3", "auto", 5, "smoke")
    try:
        with Repository.from_url(url) as repo:
            barrier.wait(timeout=TIMEOUT_S)
            results.put(run_ticker(params, settings, repo).status)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def test_two_runs_of_one_day_at_once_give_one_run_one_champion_and_five_forecasts(migrated_url, tmp_path):  # noqa: F811
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    args = (migrated_url, str(tmp_path / "home"), barrier, results)
    processes = [ctx.Process(target=_daily_run, args=args) for _ in range(2)]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=TIMEOUT_S) for _ in processes)
    for process in processes:
        process.join(timeout=60)
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
        holder.wait(timeout=30)
    with pytest.raises(RuntimeError, match="boom"), tracked_run(repo, key, settings, details={}) as run:
        raise RuntimeError("boom\nsecond line")
    assert repo.run(live).status == "failed" and repo.run(live).error.startswith("interrupted")
    assert repo.run(run.id).status == "failed" and repo.run(run.id).error == "RuntimeError: boom"
