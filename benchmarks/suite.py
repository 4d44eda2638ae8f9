"""Where the test suite's time goes: wall time, and the CPU of every test wherever it is spent.

Runs the suite as ``make test`` does (``pytest -n WORKERS --dist loadgroup``, lint excluded) with the plugin
:mod:`benchmarks._suite_cpu`, which charges each test the CPU of its own process, of the subprocesses it waited
for and of the live helpers (Prefect test API, Dask workers, servers) while it ran. The whole run's CPU comes from
``os.wait4`` of pytest (every xdist process and everything they waited for). On a machine with C cores the suite
cannot take less wall time than CPU / C, so the CPU total is the figure to cut.

    python benchmarks/suite.py                       # the whole suite (about 13 minutes on 2 cores)
    python benchmarks/suite.py -- tests/forecaster   # any pytest arguments after --

Prints the totals, the core-seconds the machine's CPUs idled during the run (``/proc/stat``: what more test
processes or another order could still use) and how long each test process idled at the end, the CPU per test file
and the slowest tests; JSON: ``benchmarks/results/suite.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, write_json  # noqa: E402
from benchmarks._suite_cpu import OUT_ENV  # noqa: E402

KINDS = ("own_s", "waited_s", "helpers_s")


def idle_core_seconds() -> float:
    """Core-seconds this machine's CPUs have spent idle (or waiting on I/O) since boot, from ``/proc/stat``."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def run_suite(workers: int, pytest_args: list[str]) -> tuple[list[dict], dict]:
    """Run pytest once; returns the per-test rows and the run's wall, CPU, idle core-seconds and exit code."""
    with tempfile.TemporaryDirectory(prefix="suite-cpu-") as tmp:
        out = Path(tmp) / "tests.jsonl"
        env = os.environ | {OUT_ENV: str(out), "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "pytest", "-n", str(workers), "--dist", "loadgroup", "-p",
               "benchmarks._suite_cpu", "-q", *pytest_args]  # fmt: skip
        started, started_at, idle = time.perf_counter(), time.time(), idle_core_seconds()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall, idle = time.perf_counter() - started, idle_core_seconds() - idle
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    run = {"command": " ".join(cmd[1:]), "exit_code": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 1),
           "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "idle_core_s": round(idle, 1), "tests": len(rows),
           "tails_s": tails(rows, started_at, wall)}  # fmt: skip
    return rows, run


def tails(rows: list[dict], started_at: float, wall: float) -> list[float]:
    """Per test process that ran a test, the seconds from its last test's end to the run's end, longest first: the
    end of a run whose processes did not finish together (what ordering the tests could still save)."""
    ends: dict[int, float] = {}
    for row in rows:
        ends[row["process"]] = max(ends.get(row["process"], 0.0), row["start"] + row["wall_s"] - started_at)
    return sorted((round(wall - end, 1) for end in ends.values()), reverse=True)


def by_file(rows: list[dict]) -> list[dict]:
    """CPU and wall per test file, the costliest first."""
    files: dict[str, dict] = defaultdict(lambda: {"tests": 0, "wall_s": 0.0, **dict.fromkeys(KINDS, 0.0)})
    for row in rows:
        entry = files[row["test"].split("::")[0]]
        entry["tests"] += 1
        for key in ("wall_s", *KINDS):
            entry[key] += row[key]
    table = [{"file": name, **{k: round(v, 1) if isinstance(v, float) else v for k, v in entry.items()}}
             for name, entry in files.items()]  # fmt: skip
    for entry in table:
        entry["cpu_s"] = round(sum(entry[k] for k in KINDS), 1)
    return sorted(table, key=lambda e: -e["cpu_s"])


def summarise(rows: list[dict], run: dict, top: int) -> dict:
    totals = {k: round(sum(r[k] for r in rows), 1) for k in KINDS}
    for row in rows:
        row["cpu_s"] = round(sum(row[k] for k in KINDS), 3)
    return {
        "run": run,
        "charged_cpu_s": totals | {"all": round(sum(totals.values()), 1)},
        "files": by_file(rows),
        "costliest_tests": sorted(rows, key=lambda r: -r["cpu_s"])[:top],
    }


def report(summary: dict, top_files: int) -> None:
    run, charged = summary["run"], summary["charged_cpu_s"]
    cores = os.cpu_count() or 1
    print(f"\n{run['tests']} tests, exit code {run['exit_code']}: wall {run['wall_s']:.0f} s, CPU {run['cpu_s']:.0f} s "
          f"(all processes); at least {run['cpu_s'] / cores:.0f} s of wall on {cores} cores")  # fmt: skip
    print(f"cores idle (machine-wide, /proc/stat) {run['idle_core_s']:.0f} core-s; each test process's idle end "
          f"{run['tails_s']} s")  # fmt: skip
    print(f"charged to tests: {charged['all']:.0f} s = own process {charged['own_s']:.0f} + waited subprocesses "
          f"{charged['waited_s']:.0f} + live helpers {charged['helpers_s']:.0f}")  # fmt: skip
    print(f"\n{'CPU s':>7} {'own':>6} {'waited':>7} {'helpers':>8} {'wall s':>7} {'tests':>5}  file")
    for f in summary["files"][:top_files]:
        print(f"{f['cpu_s']:7.0f} {f['own_s']:6.0f} {f['waited_s']:7.0f} {f['helpers_s']:8.0f} {f['wall_s']:7.0f} "
              f"{f['tests']:5d}  {f['file']}")  # fmt: skip
    print(f"\n{'CPU s':>7} {'wall s':>7}  costliest tests")
    for t in summary["costliest_tests"]:
        print(f"{t['cpu_s']:7.1f} {t['wall_s']:7.1f}  {t['test']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("TEST_WORKERS", "4")),
                        help="pytest-xdist processes, as make test's TEST_WORKERS (default 4)")  # fmt: skip
    parser.add_argument("--name", default="suite", help="results file name (default suite)")
    parser.add_argument("--top", type=int, default=20, help="costliest tests listed (default 20)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    rows, run = run_suite(args.workers, args.pytest_args)
    if not rows:
        raise SystemExit(f"no test ran (pytest exit code {run['exit_code']})")
    summary = summarise(rows, run, args.top)
    report(summary, top_files=25)
    print(f"\nwrote {write_json(args.name, summary)}")


if __name__ == "__main__":
    main()
