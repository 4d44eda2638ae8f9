"""Prefect's own CPU per task on a Dask worker: Prefect's ``DaskTaskRunner`` against ``ReusingDaskTaskRunner``.

    python benchmarks/task_overhead.py                 # 8 and 48 no-op tasks, both runners, 3 rounds (about 2 min)

What runs: a real ``prefect server start`` and one ``dask scheduler`` with one pinned ``dask worker --nthreads 1``,
as ``benchmarks/scale.py`` starts them (the recommended Dask settings, ``PREFECT_API_URL`` for every process). Each
measurement is a fresh client process that runs one flow mapping a no-op task over N inputs on the cluster, with
one of the two runners: ``prefect`` (``prefect_dask.DaskTaskRunner``) or ``reusing``
(``flows.dask_engine.ReusingDaskTaskRunner``, what ``tsla-forecast run --dask`` uses). The runners alternate within
each round (A B, then B A). The CPU seconds of the client (``os.wait4``), the worker, the scheduler and the Prefect
server are recorded per run. The cost per extra task is (CPU at the larger N - CPU at the smaller N) / (difference in
N), so the fixed start of each process drops out; medians over the rounds. Writes
``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_json  # noqa: E402

PROCESSES = ("client", "worker", "scheduler", "prefect_server")


def run_flow(address: str, n: int, runner: str) -> None:
    """The measured client: one flow of ``n`` no-op tasks on the cluster at ``address``."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_dask import DaskTaskRunner

    from flows.dask_engine import ReusingDaskTaskRunner

    @task(name="noop", cache_policy=NO_CACHE)
    def noop(i: int) -> int:
        return i

    runner_class = ReusingDaskTaskRunner if runner == "reusing" else DaskTaskRunner

    @flow(name="task-overhead", task_runner=runner_class(address=address))
    def tasks(n: int) -> list[int]:
        return [f.result() for f in noop.map(list(range(n)))]

    assert tasks(n) == list(range(n))


def measure(args: argparse.Namespace) -> list[dict]:
    from benchmarks.scale import QUIET, Cluster, _cpu, start_prefect_server, stop_process
    from flows.cluster import RECOMMENDED_DASK_ENV

    home = Path(tempfile.mkdtemp(prefix="task-overhead-"))
    server, url = start_prefect_server(home)
    env = os.environ | QUIET | {"PREFECT_API_URL": url}
    cluster = Cluster(home, env, [args.core], RECOMMENDED_DASK_ENV)
    rows = []
    try:
        cluster.start()
        assert cluster.scheduler is not None
        pids = {"worker": cluster.workers[0].pid, "scheduler": cluster.scheduler.pid, "prefect_server": server.pid}
        order = ["prefect", "reusing"]
        for rnd in range(args.rounds + 1):  # round 0 warms the server's tables and caches: not kept
            for runner in order if rnd % 2 else order[::-1]:
                for n in args.counts:
                    before = {name: _cpu(pid) for name, pid in pids.items()}
                    start = time.perf_counter()
                    cmd = [sys.executable, __file__, "--flow", cluster.address, str(n), runner]
                    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    _, status, usage = os.wait4(proc.pid, 0)
                    if os.waitstatus_to_exitcode(status) != 0:
                        raise SystemExit(f"the {runner} flow of {n} tasks failed")
                    wall = time.perf_counter() - start
                    cpu = {name: round(_cpu(pid) - before[name], 3) for name, pid in pids.items()}
                    cpu["client"] = round(usage.ru_utime + usage.ru_stime, 3)
                    if rnd:
                        rows.append(
                            {"round": rnd, "runner": runner, "tasks": n, "wall_s": round(wall, 2), "cpu_s": cpu}
                        )
                    print(f"  round {rnd}{' (warm-up)' if not rnd else ''}, {runner:8s} {n:3d} tasks: {wall:5.2f} s; "
                          f"CPU s {cpu}", flush=True)  # fmt: skip
    finally:
        cluster.close()
        stop_process(server)
    return rows


def per_extra_task(rows: list[dict], runner: str, small: int, large: int) -> dict[str, float]:
    """Median over rounds of (CPU at ``large`` - CPU at ``small``) / (``large`` - ``small``), per process, in ms."""
    out = {}
    for name in (*PROCESSES, "total"):
        costs = []
        for rnd in sorted({r["round"] for r in rows}):
            cpu = {r["tasks"]: r["cpu_s"] for r in rows if r["round"] == rnd and r["runner"] == runner}
            if name == "total":
                costs.append(sum(cpu[large][p] - cpu[small][p] for p in PROCESSES) / (large - small))
            else:
                costs.append((cpu[large][name] - cpu[small][name]) / (large - small))
        out[name] = round(1000 * statistics.median(costs), 1)
    return out


def main() -> None:
    if sys.argv[1:2] == ["--flow"]:
        run_flow(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=lambda s: sorted(int(x) for x in s.split(",")), default=[8, 48],
                        help="task counts, comma-separated: the smallest and the largest give the cost per extra task "
                        "(default 8,48)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both runners; medians (default 3)")
    parser.add_argument("--core", type=int, default=0, help="the core the worker is pinned to (default 0)")
    parser.add_argument("--name", default="task_overhead", help="JSON name under benchmarks/results/")
    args = parser.parse_args()
    rows = measure(args)
    small, large = args.counts[0], args.counts[-1]
    summary = {runner: per_extra_task(rows, runner, small, large) for runner in ("prefect", "reusing")}
    print(f"\nCPU ms per extra task ({small} -> {large} no-op tasks, medians of {args.rounds} rounds):")
    print(f"  {'runner':10s}" + "".join(f"{p:>16s}" for p in (*PROCESSES, "total")))
    for runner, costs in summary.items():
        print(f"  {runner:10s}" + "".join(f"{costs[p]:16.1f}" for p in (*PROCESSES, "total")))
    path = write_json(args.name, {"counts": args.counts, "rounds": args.rounds, "per_extra_task_cpu_ms": summary,
                                  "runs": rows})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
