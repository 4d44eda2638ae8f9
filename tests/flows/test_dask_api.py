"""``--dask`` on real ``dask scheduler`` / ``dask worker`` processes: one Prefect API for the whole run, no private
server left behind by a killed worker, and the tickers spread over both workers.

The workers are started WITHOUT ``PREFECT_API_URL`` (each with a PREFECT_HOME of its own), as on a machine that was
only told the scheduler's address.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import dask
import psutil
import pytest

from db.engine import sqlite_url
from tests.fixtures.prefect_api import recorded_task_runs
from tests.flows.dask_procs import ROOT, Cluster

DAY = dt.date(2024, 6, 3)
TICKERS = ["AAA", "BBB", "CCC", "DDD"]
ARGS = {"source": "synthetic:3", "preset": "smoke", "horizon": 3}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def cluster(home, tmp_path):
    shared = {"PYTHONPATH": str(ROOT), "TSLA_FORECAST_DATABASE_URL": sqlite_url(home)}  # the one shared store
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | shared
    running = Cluster(env)
    try:
        running.start_workers([tmp_path / "machine-1", tmp_path / "machine-2"])
        yield running
    finally:
        running.close()


def _servers(procs: list[psutil.Process]) -> list[str]:
    """The command lines of those ``procs`` still alive that are a Prefect server (uvicorn or ``prefect server``)."""
    alive = []
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "uvicorn" in cmd or "prefect.server" in cmd or "prefect server" in cmd:
            alive.append(cmd)
    return alive


def _kill_workers_and_check_no_server_survives(cluster: Cluster) -> None:
    """SIGKILL every worker (atexit does not run), then no process the workers started may still be a server."""
    started = [c for w in cluster.workers for c in psutil.Process(w.pid).children(recursive=True)]
    for w in cluster.workers:
        w.send_signal(signal.SIGKILL)
        w.wait(timeout=30)
    cluster.workers = []
    psutil.wait_procs(started, timeout=5)
    assert _servers(started) == [], "a Prefect server started by a worker outlived it"


def _kept_prefect_clients() -> int:
    """Run on a worker: the Prefect API clients it keeps between tasks (``flows.dask_engine``)."""
    import flows.dask_engine

    return sum(len(per_thread) for per_thread in flows.dask_engine._contexts.values())


def _ticker_task_runs(flow_run_ids: set[str]) -> list:
    """The ``forecast-ticker`` task runs of these flow runs (the session's API also holds other test processes'),
    read until every ticker's is recorded and final (see :mod:`tests.fixtures.prefect_api`)."""
    return recorded_task_runs(flow_run_ids, len(TICKERS), named="forecast-ticker")


def test_a_client_in_ephemeral_mode_is_refused_with_one_line_and_no_worker_starts_a_server(cluster, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "cli")}
    cmd = [sys.executable, "-m", "flows.cli", "-q", "run", "--dask", cluster.address, "--as-of", str(DAY),
           "--source", ARGS["source"], "--preset", ARGS["preset"], "--horizon", "3", "--ticker", "AAA",
           "--ticker", "BBB"]  # fmt: skip
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: --dask needs a Prefect server"), done.stderr
    assert "PREFECT_API_URL=http://" in errors[0]
    _kill_workers_and_check_no_server_survives(cluster)


@pytest.mark.reports
def test_workers_report_to_the_clients_api_and_both_run_tickers(cluster, repo, home, tmp_path, cluster_notes):
    from distributed import Client
    from prefect.settings import PREFECT_API_URL

    from flows.cli.run import run_daily
    from flows.cluster import note_busy_settings

    results = run_daily(tickers=TICKERS, as_of=DAY, retrain="auto", dask=cluster.address, **ARGS)
    assert [r["status"] for r in results] == ["succeeded"] * len(TICKERS), results
    with Client(cluster.address, timeout="60s") as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        env = client.run(lambda: os.environ.get("PREFECT_API_URL"))
        kept = client.run(_kept_prefect_clients)
    assert len(executed) == 2 and all(n >= 1 for n in executed.values()), f"both workers ran tickers: {executed}"
    assert set(env.values()) == {PREFECT_API_URL.value()}, "the workers were handed the client's API URL"
    assert set(kept.values()) == {1}, "each worker kept one Prefect client for its tasks (flows.dask_engine)"
    flow_runs = {repo.run(r["run_id"]).flow_run_id for r in results}  # as the job stored them
    assert len(flow_runs) == 1 and None not in flow_runs, flow_runs
    new = _ticker_task_runs(flow_runs)  # every ticker's task run is in the flow's API
    assert len(new) == len(TICKERS) and all(r.state and r.state.is_completed() for r in new), new
    made = [p.parent.name for m in ("machine-1", "machine-2") for p in (tmp_path / m).glob("reports/*/*/report.html")]
    assert sorted(made) == TICKERS, "#22: each report is made on the worker that forecast its ticker"
    assert not (home / "reports").exists(), "and none in the client's process"
    assert not _busy(cluster_notes), "the test cluster runs the recommended Dask settings: nothing to note"
    with Client(cluster.address, timeout="60s") as client:  # one worker back on Dask's 20 ms tick
        worker = sorted(executed)[0]
        client.run(lambda: dask.config.set({"distributed.admin.tick.interval": "20ms"}) and None, workers=[worker])
        note_busy_settings(client)
    assert [f"{worker}: distributed.admin.tick.interval=20ms" in m for m in _busy(cluster_notes)] == [True]
    _kill_workers_and_check_no_server_survives(cluster)


def _busy(notes: logging.handlers.BufferingHandler) -> list[str]:
    return [r.getMessage() for r in notes.buffer if "polls more often" in r.getMessage()]


@pytest.fixture
def cluster_notes() -> Iterator[logging.handlers.BufferingHandler]:
    """A handler that keeps what ``flows.cluster`` logs at INFO and above (its own: a Prefect flow run in this process
    replaces the root logger's handlers, caplog's included)."""
    handler = logging.handlers.BufferingHandler(capacity=10_000)
    log = logging.getLogger("flows.cluster")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
