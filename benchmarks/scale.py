"""Throughput of the daily flow on Dask: tickers per minute on 1 worker and on 2, and the cost by ticker count.

A temporary local Prefect API (``prefect_test_harness``) serves the flow and every worker.
Each configuration gets a local cluster of worker *processes* (one Dask thread each) whose TensorFlow intra-op pool is
set so that the workers together use the machine's cores once (``TF_NUM_INTRAOP_THREADS`` = cores / workers, one
inter-op thread), and a fresh database (PostgreSQL when reachable, else SQLite). Every run is one daily run (a full
retrain, since each run uses tickers of its own) of ``--tickers`` tickers from the synthetic source, whose series
differ per ticker. Workers are warmed up (TensorFlow and the job imported) before anything is timed; the wall time
is the flow call, Prefect's task orchestration included.

    python benchmarks/scale.py                      # default preset, 1 and 2 workers, 1/2/4/8 tickers (~5 min)
    python benchmarks/scale.py --preset smoke       # quicker, dominated by orchestration
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, new_postgres_database, write_json  # noqa: E402

AS_OF = dt.date(2024, 6, 3)
COUNTS = (1, 2, 4, 8)
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _database(home: Path, pg_url: str | None) -> str:
    """A new, migrated database for one configuration."""
    from db import migrate

    url = new_postgres_database(pg_url, "tsla_scale") or f"sqlite:///{home / 'forecast.db'}"
    migrate.upgrade(url)
    return url


def _warm(client) -> None:
    def imports() -> int:
        import tensorflow as tf

        import flows.jobs.daily  # noqa: F401
        import forecaster.models.lstm  # noqa: F401

        return tf.__version__

    client.run(imports)


def measure(workers: int, preset: str, pg_url: str | None, counts: tuple[int, ...]) -> dict:
    """Start a ``workers``-process cluster, run each ticker count once, return the timings."""
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL
    from prefect_dask import DaskTaskRunner

    from flows.daily import daily_forecast

    cores = os.cpu_count() or 2
    intra = max(1, cores // workers)
    home = Path(tempfile.mkdtemp(prefix=f"scale-{workers}w-"))
    url = _database(home, pg_url)
    os.environ.update(TSLA_FORECAST_HOME=str(home), TSLA_FORECAST_DATABASE_URL=url, TSLA_FORECAST_FETCH_RETRIES="0")
    env = {"TF_NUM_INTRAOP_THREADS": str(intra), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(intra),
           "PYTHONPATH": str(ROOT), "TSLA_FORECAST_HOME": str(home), "TSLA_FORECAST_DATABASE_URL": url,
           "PREFECT_API_URL": str(PREFECT_API_URL.value())}  # fmt: skip
    runs = []
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="6GiB", env=env) as cluster, Client(cluster) as client:  # fmt: skip
        _warm(client)
        flow = daily_forecast.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        for n in counts:
            tickers = [f"W{workers}N{n}T{i}" for i in range(n)]
            start = time.perf_counter()
            results = flow(tickers=tickers, as_of=AS_OF, source="synthetic:7", preset=preset, horizon=5)
            wall = time.perf_counter() - start
            assert all(r["status"] == "succeeded" for r in results), results
            runs.append({"tickers": n, "wall_s": round(wall, 2), "tickers_per_min": round(60 * n / wall, 2)})
            print(f"  {workers} worker(s), {n} ticker(s): {wall:.1f} s ({60 * n / wall:.1f} tickers/min)")
    return {"workers": workers, "intra_op_threads": intra, "database": url.split(":")[0], "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--pg-url", default=os.environ.get("TSLA_FORECAST_TEST_POSTGRES_URL", PG_DEFAULT))
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)), help="ticker counts, comma-separated")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    counts = tuple(int(c) for c in args.counts.split(","))
    from prefect.testing.utilities import prefect_test_harness

    began = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=180):  # one local API for the flow and every worker
        configs = [measure(w, args.preset, args.pg_url, counts) for w in (1, 2)]
    top = [next(r for r in c["runs"] if r["tickers"] == max(counts)) for c in configs]
    ratio = round(top[1]["tickers_per_min"] / top[0]["tickers_per_min"], 2)
    load = os.getloadavg()
    rates = f"1 worker {top[0]['tickers_per_min']}/min, 2 workers {top[1]['tickers_per_min']}/min"
    print(f"{max(counts)} tickers: {rates}, ratio {ratio}x (goal 1.6x); load average {load[0]:.1f}; "
          f"total {time.perf_counter() - began:.0f} s")  # fmt: skip
    path = write_json("scale", {"preset": args.preset, "as_of": str(AS_OF), "source": "synthetic:7", "horizon": 5,
                                "configs": configs, "ratio_2_vs_1": ratio, "goal_ratio": 1.6,
                                "load_average": [round(x, 2) for x in load]})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
