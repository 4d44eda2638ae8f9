"""Real ``dask scheduler`` and ``dask worker`` processes on loopback, each started with an environment of its own
over the one docs/scale-out.md recommends (``flows.cluster.RECOMMENDED_DASK_ENV``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from flows.cluster import RECOMMENDED_DASK_ENV
from tests.fixtures import preloaded
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    """A scheduler process and worker processes started with their own environments; stopped by pid."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.port = RECOMMENDED_DASK_ENV | env, free_port()  # a test's own DASK_ variables win
        self.workers: list[preloaded.Process] = []
        self.address = f"tcp://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
               str(self.port), "--no-dashboard"]  # fmt: skip
        self.scheduler = subprocess.Popen(
            cmd, env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def start_workers(self, homes: list[Path], nthreads: int = 1) -> None:
        """One worker per home, as on a machine of its own: its own TSLA_FORECAST_HOME and PREFECT_HOME."""
        for home in homes:
            home.mkdir(parents=True)
        self.start_workers_with([{"TSLA_FORECAST_HOME": str(h), "PREFECT_HOME": str(h / "prefect")} for h in homes],
                                nthreads)  # fmt: skip

    def start_workers_with(self, envs: list[dict[str, str]], nthreads: int = 1) -> None:
        """One `dask worker --nthreads N --no-nanny` (N = 1 unless said) per entry of ``envs`` (over the cluster's
        environment)."""
        from distributed import Client

        args = [self.address, "--nthreads", str(nthreads), "--no-dashboard", "--no-nanny", "--memory-limit", "4GiB"]
        for env in envs:
            # a worker imports TensorFlow at its first ticker: fork it with that done (tests/fixtures/preloaded.py)
            self.workers.append(preloaded.popen("distributed.cli.dask_worker", args, env=self.env | env, cwd=ROOT,
                                                output=False))  # fmt: skip
        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(len(self.workers), timeout=180)

    def stop_workers(self) -> None:
        for proc in self.workers:
            _stop(proc)
        self.workers = []
        deadline = time.monotonic() + 60
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            while client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.5)

    def close(self) -> None:
        for proc in self.workers:
            _stop(proc)
        _stop(self.scheduler)


def _stop(proc: preloaded.Process) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
