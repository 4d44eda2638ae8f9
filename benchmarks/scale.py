"""Scale-out of ``tsla-forecast run --dask``: 1 vs 2 pinned Dask workers, a real Prefect server, real PostgreSQL.

What runs (all on this machine, every process started by this script and stopped by pid):

- a Prefect server (``prefect server start``, its own PREFECT_HOME and port); client and workers use its API;
- a fresh PostgreSQL database per worker count (``--pg-url`` names the server): the one shared store;
- a ``dask scheduler`` and 1 or 2 ``dask worker --nthreads 1 --no-nanny`` processes, each pinned to its own core
  (``taskset -c CORE``) with one TensorFlow/OpenMP thread (``TF_NUM_INTRAOP_THREADS=1``,
  ``TF_NUM_INTEROP_THREADS=1``, ``OMP_NUM_THREADS=1``) and a TSLA_FORECAST_HOME and PREFECT_HOME of its own;
  warmed up (TensorFlow, Keras and the job imported) before anything is timed; the scheduler and the workers get
  the environment docs/scale-out.md recommends (``flows.cluster.RECOMMENDED_DASK_ENV``: Dask's sampling profiler
  off, a 1 s event-loop tick, a 5 s system monitor) unless ``--dask-env`` says otherwise (``--profile`` needs the
  profiler, so it implies ``--dask-env defaults``);
- per run, the real CLI: ``tsla-forecast -q run --dask ADDRESS --as-of AS_OF --source csv:TSLA_CSV --ticker ...``
  for N new tickers (a plain CSV path serves the same TSLA series for every ticker), so each ticker is day 1: a
  full fit, forecast, store and report.

Each configuration (worker count, ticker count) runs ``--repeats`` times; the figures are medians. Beside the wall
time, the CPU seconds of every process (psutil ``cpu_times`` user+system of the Prefect server, the scheduler and
the workers before and after the run; the client's from ``os.wait4``) are recorded. A ticker's own work is measured
separately, without Prefect or Dask, in a pinned one-thread process: the model (``policy_step``), the whole job
(``run_ticker``) and the report (``make_report``). The orchestration CPU per ticker is reported two ways:

- less the job in the run: (client + Prefect server + scheduler + workers - the CPU the workers spent inside
  ``run_ticker`` and ``report_ticker`` during that run, on every live thread but the main one, which runs Dask's
  event loop) / N. Both sides come from the same run, so a machine whose speed drifts between measurements (this
  one does: a ticker's job measured alone took 3.7 s of CPU at one time and 5.2 s half an hour later) cannot move
  it. It reads a little low (``report_ticker`` also publishes the report's Prefect artifact, and Prefect's
  background threads count as job while a task runs), and it needs one task thread per worker (``--nthreads 1``);
- less the job alone: (client + Prefect server + scheduler + workers) / N - (job + report measured alone), the
  figure of earlier runs.

Part of the orchestration is paid whether tickers run or not: the Prefect server's services, the scheduler's and
the workers' event loops poll while they idle. After each worker count's runs, the script measures those
processes' CPU over ``--idle-s`` seconds with nothing to do, and reports that background rate times each run's
wall time beside the orchestration. Per extra ticker (the largest ticker count against the smallest) it breaks the
orchestration down by process, so the fixed start of each process drops out. The client, the scheduler and the
Prefect server share the cores of the workers here, so the script also prints the speed-up those costs allow on
this machine and an estimate for 8 one-core worker machines.

    python benchmarks/scale.py                          # 8 and 24 tickers, 1 and 2 workers, 3 repeats (10-16 min)
    python benchmarks/scale.py --counts 8 --repeats 1   # a quick look
    python benchmarks/scale.py --workers 1 --counts 24 --dask-env defaults --name scale_dask_defaults  # their cost
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, SHARED_CSV, new_postgres_database, write_json  # noqa: E402
from flows.cluster import RECOMMENDED_DASK_ENV  # noqa: E402
from tests.fixtures.ports import free_port  # noqa: E402

AS_OF = dt.date(2024, 12, 31)
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BIN = Path(sys.executable).parent
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}
METER = "_scale_benchmark_meter"  # on the workers' flows.jobs.daily: {"job": CPU s, "main_start": CPU s}
DASK_ENVS = {  # --dask-env: what the scheduler and the workers get on top of Dask's defaults
    "recommended": RECOMMENDED_DASK_ENV,
    "profiler-off": {k: v for k, v in RECOMMENDED_DASK_ENV.items() if "__PROFILE__" in k},  # the recommendation before
    "defaults": {},
}
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0",
         "PYTHONPATH": str(ROOT), "TSLA_FORECAST_REPORTS_ENABLED": "true"}  # fmt: skip  # a ticker's job reports


def _cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (0 once it is gone)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def stop_process(proc: subprocess.Popen) -> None:
    """Stop one process this script started (and its children), by pid."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=10)


def start_prefect_server(home: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``prefect server start`` with its own PREFECT_HOME and port (and ``extra_env``); returns it and its API URL
    once healthy."""
    import httpx

    port = free_port()
    env = os.environ | QUIET | {"PREFECT_HOME": str(home / "prefect-server"), "PREFECT_UI_ENABLED": "false"}
    env |= extra_env or {}
    env.pop("PREFECT_API_URL", None)
    log = (home / "prefect-server.log").open("w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    stop_process(proc)
    raise SystemExit(f"the Prefect server did not start: see {home / 'prefect-server.log'}")


@dataclass
class Cluster:
    """A ``dask scheduler`` and pinned ``dask worker`` processes, each with an environment of its own."""

    home: Path
    env: dict[str, str]
    cores: list[int]
    dask_env: dict[str, str] = field(default_factory=dict)
    address: str = ""
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> None:
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                           "--no-dashboard"], env=self.env | self.dask_env, cwd=self.home,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        for i, core in enumerate(self.cores):
            home = self.home / f"worker-{i}"
            home.mkdir(parents=True)
            env = self.env | self.dask_env | ONE_THREAD | {"TSLA_FORECAST_HOME": str(home),
                                                           "PREFECT_HOME": str(home / "prefect")}  # fmt: skip
            cmd = ["taskset", "-c", str(core), str(BIN / "dask"), "worker", self.address, "--nthreads", "1",
                   "--no-dashboard", "--no-nanny", "--memory-limit", "6GiB"]  # fmt: skip
            self.workers.append(subprocess.Popen(cmd, env=env, cwd=home, stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL))  # fmt: skip
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(len(self.cores), timeout=180)
            client.run(_warm)
            client.run(_meter_the_job)

    def rehome(self, name: str) -> None:
        """Give each worker the new TSLA_FORECAST_HOME ``worker-I/NAME``."""
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            for i, address in enumerate(sorted(client.scheduler_info()["workers"])):
                client.run(_set_home, str(self.home / f"worker-{i}" / name), workers=[address])

    def job_cpu_in_run(self) -> tuple[float, float]:
        """CPU seconds the workers spent since the last :meth:`rehome` inside the job and the report, and on their
        main threads (Dask's event loop, where its sampling profiler runs)."""
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            meters = list(client.run(_metered_cpu).values())
        return sum(job for job, _ in meters), sum(main for _, main in meters)

    def pids(self) -> dict[str, list[int]]:
        assert self.scheduler is not None
        return {"scheduler": [self.scheduler.pid], "workers": [w.pid for w in self.workers]}

    def close(self) -> None:
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            stop_process(proc)


def _set_home(path: str) -> None:
    """Run on a worker before each run: its new home, and the meter started again (see :func:`_meter_the_job`)."""
    import flows.jobs.daily

    os.environ["TSLA_FORECAST_HOME"] = path
    flows.jobs.daily.__dict__[METER] = {"job": 0.0, "main_start": _thread_cpu()[0]}


def _thread_cpu() -> tuple[float, float]:
    """CPU seconds of this process's main thread (a Dask worker's event loop: heartbeats, messages and its sampling
    profiler, which are orchestration even while a task runs) and of its other live threads."""
    import threading

    import psutil

    main_id, main, rest = threading.main_thread().native_id, 0.0, 0.0
    for t in psutil.Process().threads():
        if t.id == main_id:
            main += t.user_time + t.system_time
        else:
            rest += t.user_time + t.system_time
    return main, rest


def _meter_the_job() -> None:
    """Run on each worker: wrap the job (``flows.jobs.daily.run_ticker``, and ``flows.daily``'s name for it where an
    older ``flows.daily`` imported it at load) and the report (``flows.daily.report_ticker``), both looked up at
    call time by the ``forecast-ticker`` task, so that the CPU spent inside them, on every live thread but the main
    one (TensorFlow's included), adds up in the meter's ``job``."""
    import functools

    import flows.daily
    import flows.jobs.daily

    def metered(fn):  # noqa: ANN001, ANN202 - any callable
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            start = _thread_cpu()[1]
            try:
                return fn(*args, **kwargs)
            finally:
                flows.jobs.daily.__dict__[METER]["job"] += _thread_cpu()[1] - start

        wrapper.__dict__[METER] = True  # wrapped once, however often the cluster is set up
        return wrapper

    wrapped = [(flows.jobs.daily, "run_ticker"), (flows.daily, "report_ticker")]
    wrapped += [(flows.daily, "run_ticker")] if hasattr(flows.daily, "run_ticker") else []  # code that imported it
    for module, name in wrapped:
        if not getattr(module, name).__dict__.get(METER):
            setattr(module, name, metered(getattr(module, name)))


def _metered_cpu() -> tuple[float, float]:
    """Run on each worker after a run: the CPU seconds in the job and report, and on the main thread, since
    :func:`_set_home`."""
    import flows.jobs.daily

    meter = flows.jobs.daily.__dict__[METER]
    return meter["job"], _thread_cpu()[0] - meter["main_start"]


def _warm() -> str:
    """Run on each worker: import what a ticker's task needs, so no timed run pays for it."""
    import keras  # noqa: F401
    import tensorflow as tf

    import flows.daily  # noqa: F401
    import flows.jobs.daily  # noqa: F401
    import forecaster.models.lstm  # noqa: F401
    import forecaster.models.networks  # noqa: F401

    return tf.__version__


def run_cli(address: str, tickers: list[str], env: dict[str, str], home: Path, preset: str, horizon: int,
            profile: Path | None = None) -> tuple[float, float]:  # fmt: skip
    """One ``tsla-forecast run --dask`` (under cProfile into ``profile``); returns (wall s, the client's CPU s)."""
    prog = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "flows.cli"] if profile else [
        str(BIN / "tsla-forecast")]  # fmt: skip
    cmd = [*prog, "-q", "run", "--dask", address, "--as-of", str(AS_OF), "--source",
           f"csv:{SHARED_CSV}", "--preset", preset, "--horizon", str(horizon), "--retrain", "auto"]  # fmt: skip
    for t in tickers:
        cmd += ["--ticker", t]
    log = (home / "client.log").open("a")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"tsla-forecast run failed ({proc.returncode}): see {home / 'client.log'}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(n_workers: int, counts: list[int], repeats: int, args: argparse.Namespace, base: Path,
            server: dict[str, object]) -> list[dict]:  # fmt: skip
    """Every (ticker count, repeat) on a fresh cluster of ``n_workers`` pinned workers and a fresh database."""
    home = base / f"{n_workers}w"
    home.mkdir()
    db_url = new_postgres_database(args.pg_url, "tsla_scale")
    if db_url is None:
        raise SystemExit("this benchmark needs PostgreSQL (--pg-url)")
    env = os.environ | QUIET | {"PREFECT_API_URL": str(server["url"]), "TSLA_FORECAST_DATABASE_URL": db_url,
                                "TSLA_FORECAST_FETCH_RETRIES": "0"}  # fmt: skip
    cluster = Cluster(home, env, args.cores[:n_workers], DASK_ENVS[args.dask_env])
    client_env = env | {"PREFECT_HOME": str(home / "client" / "prefect")}
    rows = []
    try:
        cluster.start()
        pids = cluster.pids() | {"prefect_server": [int(server["pid"])]}  # type: ignore[call-overload]
        for n in counts:
            for rep in range(repeats):
                tickers = [f"W{n_workers}N{n}R{rep}T{i}" for i in range(n)]
                run_home = f"run-{n}t-{rep}"  # each run's reports index only its own tickers, as a fixed set would
                cluster.rehome(run_home)
                client_env["TSLA_FORECAST_HOME"] = str(home / "client" / run_home)
                before = _cpu_by_name(pids)
                profile = args.profile / f"client-{n_workers}w-{n}t.prof" if args.profile and rep == 0 else None
                if profile:
                    worker_profile(cluster.address, None)  # forget the samples of earlier runs
                wall, client_cpu = run_cli(cluster.address, tickers, client_env, home, args.preset, args.horizon,
                                           profile)  # fmt: skip
                if profile:
                    worker_profile(cluster.address, args.profile / f"workers-{n_workers}w-{n}t.txt")
                cpu = {k: round(v - before[k], 2) for k, v in _cpu_by_name(pids).items()}
                cpu["client"] = round(client_cpu, 2)
                job, main = (round(x, 2) for x in cluster.job_cpu_in_run())
                rows.append({"workers": n_workers, "tickers": n, "repeat": rep, "wall_s": round(wall, 2), "cpu_s": cpu,
                             "job_and_report_cpu_in_run_s": job, "workers_main_thread_cpu_s": main})  # fmt: skip
                print(f"  {n_workers} worker(s), {n:2d} tickers, run {rep + 1}: {wall:5.1f} s; CPU s {cpu}; "
                      f"in the job and report {job}; the workers' main threads {main}", flush=True)  # fmt: skip
        idle = idle_cpu_rates(pids, args.idle_s)
        print(f"  {n_workers} worker(s), idle for {args.idle_s:.0f} s after the runs: CPU s per s {idle}", flush=True)
        rows = [r | {"idle_cpu_per_s": idle} for r in rows]
    finally:
        cluster.close()
    return rows


def _cpu_by_name(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each named group of processes (see :func:`_cpu`)."""
    return {name: sum(_cpu(p) for p in group) for name, group in pids.items()}


def idle_cpu_rates(pids: dict[str, list[int]], seconds: float) -> dict[str, float]:
    """CPU seconds per second of each process while nothing runs: what it costs merely by being up."""
    import psutil

    time.sleep(5)  # let the last run's stragglers (events, log batches) settle
    before, start = _cpu_by_name(pids), time.perf_counter()
    time.sleep(seconds)
    after, elapsed = _cpu_by_name(pids), time.perf_counter() - start
    if gone := [p for group in pids.values() for p in group if not psutil.pid_exists(p)]:
        raise SystemExit(f"process(es) {gone} ended while their idle CPU was measured")
    return {k: round((after[k] - before[k]) / elapsed, 4) for k in pids}


def worker_profile(address: str, path: Path | None, top: int = 40) -> None:
    """Write the functions the workers' task threads spent the most samples in since the last call (Dask's own
    statistical profiler), inclusive, with their share of all samples; then forget the samples."""
    from collections import Counter

    from distributed import Client

    with Client(address, timeout="60s") as client:
        tree = client.profile()
        client.run(lambda dask_worker: dask_worker.profile_history.clear())
    if path is None:
        return
    counts: Counter[str] = Counter()

    def walk(node: dict, seen: frozenset[str]) -> None:
        name = node["description"]["filename"].split("site-packages/")[-1] + ":" + node["description"]["name"]
        if name not in seen:
            counts[name] += node["count"]
        for child in node["children"].values():
            walk(child, seen | {name})

    walk(tree, frozenset())
    total = max(tree["count"], 1)
    path.write_text("\n".join(f"{100 * c / total:5.1f}%  {name}" for name, c in counts.most_common(top)) + "\n")


JOB_CPU = """
import json, os, sys, time, statistics
sys.path.insert(0, {root!r})
import datetime as dt
from benchmarks._common import load_tsla
from db.repository import Repository
from flows.jobs.daily import JobParams, run_ticker
from flows.report.archive import make_report
from flows.settings import Settings
from forecaster.models.presets import get_preset
from forecaster.step import PolicyState, policy_step
as_of, settings = dt.date.fromisoformat({as_of!r}), Settings()
prices = load_tsla({as_of!r})
runs = []
with Repository.from_url(settings.db_url) as repo:
    for i in range({repeats} + 1):
        t0 = time.process_time()
        policy_step(PolicyState(), prices, preset=get_preset({preset!r}), horizon={horizon},
                    settings=settings.policy(), live={{}})
        t1 = time.process_time()
        params = JobParams(f"JOB{{i}}", as_of, {source!r}, "auto", {horizon}, {preset!r})
        run_ticker(params, settings, repo)
        t2 = time.process_time()
        make_report(repo, settings, params.ticker, as_of)
        runs.append((t1 - t0, t2 - t1, time.process_time() - t2))
print(json.dumps([statistics.median(r[k] for r in runs[1:]) for k in range(3)]))
"""


def job_cpu(core: int, args: argparse.Namespace, base: Path) -> dict[str, float]:
    """CPU seconds of one ticker's own work without Prefect or Dask, in a pinned one-thread process like a worker
    (after one warm-up ticker; medians of ``--repeats``): the model (``policy_step``: full fit and forecast), the
    whole job (``run_ticker``: database reads, the model, packing, the transaction) and the report
    (``make_report``: figures, HTML, archive, index)."""
    db_url = new_postgres_database(args.pg_url, "tsla_scale")
    if db_url is None:
        raise SystemExit("this benchmark needs PostgreSQL (--pg-url)")
    from db import migrate

    migrate.upgrade(db_url)
    code = JOB_CPU.format(root=str(ROOT), as_of=str(AS_OF), preset=args.preset, horizon=args.horizon,
                          repeats=args.repeats, source=f"csv:{SHARED_CSV}")  # fmt: skip
    env = os.environ | QUIET | ONE_THREAD | {"TSLA_FORECAST_DATABASE_URL": db_url,
                                             "TSLA_FORECAST_HOME": str(base / "job")}  # fmt: skip
    done = subprocess.run(["taskset", "-c", str(core), sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the job CPU measurement failed:\n{done.stderr[-3000:]}")
    model, job, report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"model": round(model, 3), "job": round(job, 3), "report": round(report, 3)}


def summarise(rows: list[dict], own: dict[str, float]) -> list[dict]:
    """Medians per (workers, tickers): wall time, CPU per process, and the orchestration CPU per ticker: all CPU less
    the job and report measured in the same run, and less N x the job and report measured alone (:func:`job_cpu`)."""
    out = []
    for key in sorted({(r["workers"], r["tickers"]) for r in rows}):
        runs = [r for r in rows if (r["workers"], r["tickers"]) == key]
        n = key[1]
        cpu = {p: round(statistics.median(r["cpu_s"][p] for r in runs), 2) for p in runs[0]["cpu_s"]}
        total = statistics.median(sum(r["cpu_s"].values()) for r in runs)
        in_run = [(sum(r["cpu_s"].values()) - r["job_and_report_cpu_in_run_s"]) / n for r in runs
                  if "job_and_report_cpu_in_run_s" in r]  # fmt: skip
        main = [r["workers_main_thread_cpu_s"] / n for r in runs if "workers_main_thread_cpu_s" in r]
        background = [sum(r["idle_cpu_per_s"].values()) * r["wall_s"] / n for r in runs if "idle_cpu_per_s" in r]
        out.append({"workers": key[0], "tickers": n, "wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
                    "walls": [r["wall_s"] for r in runs], "cpu_s": cpu, "cpu_total_s": round(total, 2),
                    "orchestration_cpu_per_ticker_s": round(total / n - own["job"] - own["report"], 3),
                    "orchestration_cpu_per_ticker_in_run_s": round(statistics.median(in_run), 3) if in_run else None,
                    "workers_main_thread_cpu_per_ticker_s": round(statistics.median(main), 3) if main else None,
                    "background_cpu_per_ticker_s": round(statistics.median(background), 3) if background else None,
                    "cpu_per_ticker_less_model_s": round(total / n - own["model"], 3)})  # fmt: skip
    return out


def _per_extra(rows: list[dict], lo: int, hi: int, value: Callable[[dict], float]) -> float:
    """(median of ``value`` over the runs of ``hi`` tickers - that of ``lo`` tickers) / (hi - lo)."""
    at = {n: statistics.median(value(r) for r in rows if r["tickers"] == n) for n in (lo, hi)}
    return (at[hi] - at[lo]) / (hi - lo)


def _outside_job(proc: str) -> Callable[[dict], float]:
    """A run's CPU seconds in ``proc``; the workers' less the job and report they ran."""
    return lambda r: r["cpu_s"][proc] - (r["job_and_report_cpu_in_run_s"] if proc == "workers" else 0.0)


def per_extra_ticker(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per worker count, the medians at its largest ticker count less those at its smallest, per extra ticker: the
    orchestration in the run by process (the workers' outside the job), and the background share of it (the idle
    rates times the extra wall time). The fixed start of each process drops out. ``orchestration`` is the sum of the
    rounded per-process figures (the medians are per process)."""
    out = {}
    for w in sorted({r["workers"] for r in rows}):
        mine = [r for r in rows if r["workers"] == w]
        counts = sorted({r["tickers"] for r in mine})
        if len(counts) < 2 or not all("job_and_report_cpu_in_run_s" in r for r in mine):
            continue
        lo, hi = counts[0], counts[-1]
        procs = ("client", "prefect_server", "scheduler", "workers")
        extra = {proc: round(_per_extra(mine, lo, hi, _outside_job(proc)), 3) for proc in procs}
        extra["orchestration"] = round(sum(extra.values()), 3)
        if all("idle_cpu_per_s" in r for r in mine):  # the idle rates (one per worker count) times the extra wall
            background = _per_extra(mine, lo, hi, lambda r: sum(r["idle_cpu_per_s"].values()) * r["wall_s"])
            extra["of_which_background"] = round(background, 3)
        out[str(w)] = extra
    return out


def estimate(table: list[dict], cores: int) -> dict:
    """What the measured costs allow, from the 1-worker runs at the smallest and largest ticker count: the fixed
    wall time F, the per-ticker CPU on the workers (w) and in the shared processes (s: client, scheduler, Prefect
    server). Here everything shares ``cores`` cores, so N tickers take at least F + N (w + s) / cores; on M
    one-core worker machines (the shared processes on a machine of their own) at least F + N max(w / M, s)."""
    one = sorted((r for r in table if r["workers"] == 1), key=lambda r: r["tickers"])
    if len(one) < 2:
        return {}
    lo, hi, n = one[0], one[-1], one[-1]["tickers"]
    dn = hi["tickers"] - lo["tickers"]
    w = (hi["cpu_s"]["workers"] - lo["cpu_s"]["workers"]) / dn
    s = sum(hi["cpu_s"][p] - lo["cpu_s"][p] for p in ("client", "scheduler", "prefect_server")) / dn
    fixed = max(0.0, lo["wall_s"] - lo["tickers"] * (hi["wall_s"] - lo["wall_s"]) / dn)

    def ratio(wall: float, machines: int) -> float:  # w is one worker's: with fewer tickers each, M is the bound
        return round(min(hi["wall_s"] / wall, machines), 2)

    return {"fixed_wall_s": round(fixed, 2), "worker_cpu_per_ticker_s": round(w, 3),
            "shared_cpu_per_ticker_s": round(s, 3), "tickers": n,
            f"limit_here_{cores}_workers": ratio(fixed + n * (w + s) / cores, cores),
            "estimate_8_machines": ratio(fixed + n * max(w / 8, s), 8),
            "estimate_8_machines_tickers_per_min": round(60 * n / (fixed + n * max(w / 8, s)), 1)}  # fmt: skip


def run_all(args: argparse.Namespace, counts: list[int], workers: list[int]) -> tuple[list[dict], dict[str, float]]:
    """The job CPU, then every configuration on one Prefect server; returns the runs and the job CPU."""
    base = Path(tempfile.mkdtemp(prefix="scale-"))
    print("one ticker's own CPU without Prefect (pinned, 1 thread): ", end="", flush=True)
    own = job_cpu(args.cores[0], args, base)
    print(f"model {own['model']} s, job {own['job']} s, report {own['report']} s")
    server, url = start_prefect_server(base)
    try:
        rows = [r for w in workers for r in measure(w, counts, args.repeats, args, base,
                                                    {"url": url, "pid": server.pid})]  # fmt: skip
    finally:
        stop_process(server)
    return rows, own


def _dask_env_of(result: dict) -> str:
    """The ``--dask-env`` of a JSON result and the variables it stood for, as JSON (comparable); older results said
    only whether Dask's profiler ran (before the option, always: Dask's defaults)."""
    name = result.get("dask_env") or ("defaults" if result.get("worker_profiler", True) else "profiler-off")
    return json.dumps([name, result.get("dask_env_vars", DASK_ENVS[name])], sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="8,24", help="ticker counts, comma-separated (default 8,24)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration; medians (default 3)")
    parser.add_argument("--cores", default="0,1", help="cores the workers are pinned to, in order (default 0,1)")
    parser.add_argument("--preset", default="default", help="model preset (default: default)")
    parser.add_argument("--horizon", type=int, default=5, help="forecast horizon (default 5)")
    parser.add_argument("--pg-url", default=os.environ.get("TSLA_FORECAST_TEST_POSTGRES_URL", PG_DEFAULT),
                        help="PostgreSQL server; a fresh database is created on it per worker count")  # fmt: skip
    parser.add_argument("--profile", type=Path, help="write the client's cProfile and the workers' sampled profile "
                        "of the first run of each configuration into this folder")  # fmt: skip
    parser.add_argument("--dask-env", choices=sorted(DASK_ENVS),
                        help="what the scheduler and workers run with: the environment docs/scale-out.md recommends "
                        "(the default), only Dask's profiler off (the recommendation before), or Dask's defaults "
                        "(the default with --profile, which reads the profiler)")  # fmt: skip
    parser.add_argument("--idle-s", type=float, default=30.0,
                        help="seconds to measure the processes' idle CPU after each worker count's runs "
                        "(default 30)")  # fmt: skip
    parser.add_argument("--combine", nargs="+", type=Path, metavar="JSON",
                        help="no runs: summarise the runs of earlier JSON results together (e.g. one per worker "
                        "count, each run as its own shorter command)")  # fmt: skip
    parser.add_argument("--name", default="scale", help="JSON name under benchmarks/results (default scale)")
    args = parser.parse_args()
    args.cores = [int(c) for c in args.cores.split(",")]
    if args.idle_s <= 0:
        parser.error("--idle-s must be more than 0 seconds")
    if args.profile and args.dask_env not in (None, "defaults"):
        parser.error("--profile reads Dask's profiler: it needs --dask-env defaults")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    args.dask_env = args.dask_env or ("defaults" if args.profile else "recommended")
    counts = [int(c) for c in args.counts.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    if max(workers) > len(args.cores):
        raise SystemExit(f"{max(workers)} workers need {max(workers)} --cores")
    if not SHARED_CSV.exists():
        raise SystemExit(f"benchmark needs {SHARED_CSV}")

    began = time.perf_counter()
    if args.combine:
        loaded = [json.loads(p.read_text()) for p in args.combine]
        rows = [r for d in loaded for r in d["runs"]]
        own = {k: statistics.median(d["own_cpu_per_ticker_s"][k] for d in loaded) for k in ("model", "job", "report")}
        envs = {_dask_env_of(d) for d in loaded}
        if len(envs) > 1:
            raise SystemExit(f"--combine: these results differ in --dask-env ({'; '.join(sorted(envs))}); combine "
                             "like with like")  # fmt: skip
        args.dask_env, dask_env_vars = json.loads(envs.pop())
        counts = sorted({r["tickers"] for r in rows})
    else:
        rows, own = run_all(args, counts, workers)
        dask_env_vars = DASK_ENVS[args.dask_env]
    table = summarise(rows, own)
    print(f"\n| workers | tickers | wall s (median of {args.repeats}) | CPU s: client | Prefect server | scheduler | "
          "workers | orchestration CPU s/ticker: less the job in the run | of which background | "
          "less the job alone |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        c = r["cpu_s"]
        print(f"| {r['workers']} | {r['tickers']} | {r['wall_s']} | {c['client']} | {c['prefect_server']} | "
              f"{c['scheduler']} | {c['workers']} | {r['orchestration_cpu_per_ticker_in_run_s']} | "
              f"{r['background_cpu_per_ticker_s']} | {r['orchestration_cpu_per_ticker_s']} |")  # fmt: skip
    ratios = {}
    for n in counts:
        walls = {r["workers"]: r["wall_s"] for r in table if r["tickers"] == n}
        if 1 in walls and 2 in walls:
            ratios[str(n)] = round(walls[1] / walls[2], 2)
            print(f"{n} tickers: 2 workers vs 1: {ratios[str(n)]}x (goal 1.7x)")
    extra = per_extra_ticker(rows)
    for w, parts in extra.items():
        print(f"{w} worker(s), orchestration CPU s per extra ticker: {parts}")
    limits = estimate(table, len(args.cores))
    print(f"estimate: {limits}")
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {load}; total {time.perf_counter() - began:.0f} s")
    path = write_json(args.name, {"as_of": str(AS_OF), "source": "csv:tsla_daily.csv", "preset": args.preset,
                                  "horizon": args.horizon, "repeats": args.repeats, "cores": args.cores,
                                  "dask_env": args.dask_env, "dask_env_vars": dask_env_vars,
                                  "own_cpu_per_ticker_s": own, "table": table, "ratios_2_vs_1": ratios,
                                  "orchestration_cpu_per_extra_ticker_s": extra,
                                  "goal_ratio": 1.7, "estimate": limits, "runs": rows,
                                  "load_average": load})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
