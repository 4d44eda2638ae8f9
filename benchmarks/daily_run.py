"""Whole-process timings of ``tsla-forecast run`` on ../shared/data/tsla_daily.csv, broken into phases.

    python benchmarks/daily_run.py                       # 3 repeats, ephemeral Prefect and a running server
    python benchmarks/daily_run.py --repeats 1 --modes ephemeral
    python benchmarks/daily_run.py --readme README.md    # also replace the block between the daily_run markers

Each repeat uses a fresh ``TSLA_FORECAST_HOME`` and runs three days in order, each as its own CLI process:

* ``cold``:     ``--as-of 2024-12-19 --retrain full`` (a full retrain of the ``default`` preset on an empty home);
* ``finetune``: ``--as-of 2024-12-20`` (``auto``: the policy fine-tunes yesterday's champion);
* ``noop``:     ``--as-of 2024-12-20`` again (already succeeded: nothing to do).

Wall time is measured around the subprocess. Phases come from the timestamps of the CLI's log lines
(``%(asctime)s``, millisecond resolution); each phase ends at its marker line:

* ``imports``        process start -> Prefect starts (interpreter, CLI, pandas/SQLAlchemy/Prefect imports, schema
  check); with a running server this also holds the API call that creates the flow run;
* ``prefect_start``  "Starting temporary server" -> "Beginning flow run" (ephemeral mode only);
* ``fetch_validate`` -> "prices:" (fetch task, validation, merge with the stored history) or, for the no-op,
  -> "already succeeded" (the idempotency check);
* ``train``          -> "gate:" (TensorFlow import, champion load, retrain decision, fit or fine-tune, gate scoring);
* ``forecast``       -> "forecast:" (the published model's forecast);
* ``write``          -> "stored:" (bundle written atomically, one database transaction);
* ``report``         -> "report step" (task completion, run-summary artifact, report step);
* ``shutdown``       -> process exit (flow-run completion, temporary-server stop, interpreter teardown).

Modes: ``ephemeral`` (no ``PREFECT_API_URL``: every process starts Prefect's temporary server, as ``make run``
does) and ``server`` (a ``prefect server start`` on a free port with a temporary ``PREFECT_HOME``, stopped by PID
at the end). Reported figures are medians over the repeats; every sample is in the JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, SHARED_CSV, write_json  # noqa: E402
from tests.fixtures.ports import free_port  # noqa: E402

SCENARIOS: list[tuple[str, list[str]]] = [
    ("cold", ["--as-of", "2024-12-19", "--retrain", "full"]),
    ("finetune", ["--as-of", "2024-12-20"]),
    ("noop", ["--as-of", "2024-12-20"]),
]
GOALS_S = {"cold": 120.0, "finetune": 25.0, "noop": 15.0}
# (phase, regex of the log line that ends it); the first phase starts at process start, the last ends at exit.
PHASES: list[tuple[str, str | None]] = [
    ("imports", r"prefect: Starting temporary server|prefect\.flow_runs: Beginning flow run"),
    ("prefect_start", r"prefect\.flow_runs: Beginning flow run"),
    ("fetch_validate", r"flows\.pipeline: \S+ \S+: prices:|already succeeded"),
    ("train", r"flows\.pipeline: \S+ \S+: gate:"),
    ("forecast", r"flows\.pipeline: \S+ \S+: forecast:"),
    ("write", r"flows\.pipeline: \S+ \S+: stored:"),
    ("report", r"flows\.daily: report step"),
    ("shutdown", None),
]
LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) ")


def _stamp(line: str) -> float | None:
    match = LOG_LINE.match(line)
    return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if match else None


def phases(stderr: str, t0: float, t1: float) -> dict[str, float | None]:
    """Seconds per phase from the log timestamps; a phase whose marker never appears is None (its time goes to
    the next phase that has one)."""
    stamped = [(ts, line) for line in stderr.splitlines() if (ts := _stamp(line)) is not None]
    out: dict[str, float | None] = {}
    start, cursor = t0, 0
    for name, marker in PHASES:
        if marker is None:
            out[name] = round(t1 - start, 3)
            break
        hit = next((i for i in range(cursor, len(stamped)) if re.search(marker, stamped[i][1])), None)
        if hit is None:
            out[name] = None
            continue
        out[name] = round(stamped[hit][0] - start, 3)
        start, cursor = stamped[hit][0], hit + 1
    return out


def _decision(stderr: str) -> str:
    if "already succeeded" in stderr:
        return "already done"
    match = re.search(r"flows\.pipeline: \S+ \S+: (\w+) retrain: (.*)", stderr)
    return f"{match.group(1)} ({match.group(2)})" if match else "?"


def run_cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One whole ``tsla-forecast run`` process: wall seconds, phases and the retrain decision."""
    cmd = [sys.executable, "-m", "flows.cli", "run", "--source", f"csv:{SHARED_CSV}", *args]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    t1 = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return {"wall_s": round(t1 - t0, 3), "phases_s": phases(proc.stderr, t0, t1), "decision": _decision(proc.stderr)}


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str, float]:
    """``prefect server start`` on a free port; returns the process, its API URL and seconds to healthy."""
    port = free_port()
    prefect = str(Path(sys.executable).with_name("prefect"))
    t0 = time.time()
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    while time.time() - t0 < 180:
        if proc.poll() is not None:
            raise SystemExit(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as answer:
                if answer.status == 200:
                    return proc, api, round(time.time() - t0, 3)
        except OSError:
            pass
        time.sleep(0.25)
    stop_server(proc)
    raise SystemExit("prefect server did not become healthy in 180 s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (started by us in its own session), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def run_mode(mode: str, repeats: int, scratch: Path, base_env: dict[str, str]) -> dict[str, Any]:
    """``repeats`` x (cold, finetune, noop) in one Prefect mode; the Prefect home is shared by the repeats."""
    env = base_env | {"PREFECT_HOME": str(scratch / f"prefect-{mode}")}
    server, info = None, {}
    if mode == "server":
        server, api, ready = start_server(env)
        env["PREFECT_API_URL"] = api
        info = {"api_url": api, "server_ready_s": ready}
        print(f"[server] prefect server healthy after {ready:.1f} s at {api}", flush=True)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in SCENARIOS}
    try:
        for rep in range(repeats):
            home = scratch / f"home-{mode}-{rep}"
            for name, args in SCENARIOS:
                sample = run_cli(args, env | {"TSLA_FORECAST_HOME": str(home)})
                samples[name].append(sample)
                print(f"[{mode}] repeat {rep + 1}/{repeats} {name:>8}: {sample['wall_s']:6.1f} s  {sample['decision']}",
                      flush=True)  # fmt: skip
    finally:
        if server is not None:
            stop_server(server)
    return info | {"runs": {name: summarise(runs) for name, runs in samples.items()}}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    medians = {}
    for name, _ in PHASES:
        values = [r["phases_s"][name] for r in runs if r["phases_s"][name] is not None]
        medians[name] = round(statistics.median(values), 2) if values else None
    return {"wall_median_s": round(statistics.median(walls), 2), "wall_s": walls, "phases_median_s": medians,
            "decisions": sorted({r["decision"] for r in runs}), "samples": runs}  # fmt: skip


def table(results: dict[str, Any]) -> str:
    """A Markdown table: one row per (mode, day), median seconds per phase, wall and goal."""
    names = [name for name, _ in PHASES]
    head = ["Prefect", "day", "wall (s)", "goal (s)", *names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for mode, data in results.items():
        for day, run in data["runs"].items():
            cells = [f"{v:.1f}" if v is not None else "–" for v in (run["phases_median_s"][n] for n in names)]
            wall, goal = run["wall_median_s"], GOALS_S[day]
            ok = "✓" if wall <= goal else "✗"
            lines.append(f"| {mode} | {day} | {wall:.1f} | {goal:.0f} {ok} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme(path: Path, text: str) -> None:
    """Replace the block between ``<!-- daily_run:begin -->`` and ``<!-- daily_run:end -->`` (both must exist)."""
    begin, end = "<!-- daily_run:begin -->", "<!-- daily_run:end -->"
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise SystemExit(f"{path} has no {begin} ... {end} block")
    head, rest = doc.split(begin, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=["ephemeral", "server"], default=["ephemeral", "server"])
    parser.add_argument("--readme", type=Path, help="also write the table into this file's daily_run block")
    opts = parser.parse_args()
    if not SHARED_CSV.exists():
        raise SystemExit(f"benchmark needs {SHARED_CSV} (the ../shared data set)")
    with tempfile.TemporaryDirectory(prefix="daily-run-bench-") as tmp:
        scratch = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TSLA_FORECAST_"))}
        base |= {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "TSLA_FORECAST_FETCH_RETRIES": "0",
            "KERAS_HOME": str(scratch / "keras"),
            "MPLCONFIGDIR": str(scratch / "mpl"),
            "XDG_CACHE_HOME": str(scratch / "cache"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_ENABLE_ONEDNN_OPTS": "0",
        }
        results = {mode: run_mode(mode, opts.repeats, scratch, base) for mode in opts.modes}
    text = table(results)
    print(f"\nMedians of {opts.repeats} run(s), seconds; phases from the CLI's log timestamps.\n")
    print(text)
    path = write_json(
        "daily_run",
        {"csv": str(SHARED_CSV.resolve()), "repeats": opts.repeats, "goals_s": GOALS_S,
         "phase_markers": dict(PHASES), "results": results, "table_markdown": text},
    )  # fmt: skip
    print(f"\nwrote {path}")
    if opts.readme:
        update_readme(opts.readme, text)
        print(f"updated {opts.readme}")


if __name__ == "__main__":
    main()
