"""Multi-ticker fan-out on a real Dask cluster (prefect-dask): two worker processes, two synthetic tickers.

The cluster is started inside each test, after the ``home`` fixture has set ``TSLA_FORECAST_HOME`` (and the
other variables), so that the worker processes inherit them. That the ticker tasks really ran on the Dask
workers is checked with the scheduler's task stream: the per-ticker task keys and the worker that ran each.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from flows.daily import daily_forecast
from flows.dask_engine import ReusingDaskTaskRunner
from tests.db.helpers import count_rows
from tests.flows.dask_procs import ROOT, Cluster

DAY1, DAY2 = dt.date(2024, 6, 3), dt.date(2024, 6, 4)
TICKERS = ["AAA", "BBB"]
ARGS = {"source": "synthetic:3", "preset": "smoke", "horizon": 3}

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def cluster(home):
    """A ``dask scheduler`` and two ``dask worker`` processes (one thread each) that share this test's home, as
    workers on the client's machine do; a client of the scheduler. Stopped afterwards."""
    from distributed import Client

    running = Cluster(dict(os.environ) | {"PYTHONPATH": str(ROOT)})
    try:
        running.start_workers_with([{}, {}])
        with Client(running.address, timeout="60s") as client:
            yield running, client
    finally:
        running.close()


def test_the_flow_leaves_the_job_to_where_a_ticker_runs():
    """A ``--dask`` client imports the flow, not the job: scikit-learn, SciPy, TensorFlow and matplotlib load on the
    worker that runs a ticker (about 1.3 s of the client's CPU; see docs/scale-out.md)."""
    heavy = ("flows.jobs.daily", "sklearn", "scipy", "tensorflow", "keras", "matplotlib")
    code = f"import sys, flows.daily; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]


def _ticker_tasks(stream: list[dict]) -> list[dict]:
    """The task-stream records of the per-ticker Prefect task (its Dask key is named after the function)."""
    return [r for r in stream if str(r["key"]).startswith("forecast_ticker-")]


def _assert_ran_on_workers(client, stream: list[dict], n: int) -> None:
    records = _ticker_tasks(stream)
    assert len(records) == n, [r["key"] for r in stream]
    workers = set(client.scheduler_info()["workers"])
    assert {r["worker"] for r in records} <= workers, "every ticker task ran on one of the cluster's workers"
    assert all(r["status"] == "OK" for r in records)


def _assert_stored(repo, results: list[dict], as_of: dt.date) -> None:
    assert sorted(r["ticker"] for r in results) == TICKERS
    assert all(r["status"] == "succeeded" for r in results), results
    for r in results:
        assert repo.find_run("daily", r["ticker"], as_of).status == "succeeded"
        assert len(r["forecasts"]) == 3 and r["forecasts"][0]["as_of"] == str(as_of)


def test_two_tickers_fan_out_on_a_dask_cluster_from_the_flow_and_the_cli(cluster, repo, home, capsys):
    from distributed import get_task_stream

    from flows.cli.run import run_daily

    dask_cluster, client = cluster
    flow = daily_forecast.with_options(task_runner=ReusingDaskTaskRunner(address=dask_cluster.address))
    with get_task_stream(client) as ts:
        results = flow(tickers=TICKERS, as_of=DAY1, **ARGS)
    _assert_stored(repo, results, DAY1)
    _assert_ran_on_workers(client, ts.data, n=2)
    assert count_rows(repo)["forecasts"] == 6
    assert {repo.champion(t).ticker for t in TICKERS} == set(TICKERS)
    for t in TICKERS:  # each worker stored its ticker's model artefact and bars in the database, not on disk
        assert repo.artifact_data(repo.champion(t).id) is not None
        assert repo.latest_price_date(t) == DAY1
    assert not (home / "models").exists()

    # The CLI path (`tsla-forecast run --dask ADDRESS`), on the next session: both tickers fine-tune on the workers.
    with get_task_stream(client) as ts:
        again = run_daily(tickers=TICKERS, as_of=DAY2, retrain="auto", dask=dask_cluster.address, **ARGS)
    _assert_stored(repo, again, DAY2)
    _assert_ran_on_workers(client, ts.data, n=2)
    assert all("sessions from its full fit" in r["decision"] for r in again), [r["decision"] for r in again]
    out = capsys.readouterr().out
    assert all(f"{t} {DAY2}: succeeded" in out for t in TICKERS)
