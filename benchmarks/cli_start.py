"""CPU of fresh ``tsla-forecast`` commands that read the database, this code against another, alternating.

Every command a user, cron or a Prefect worker starts is a fresh process, and each one that touches the database
first checks its schema (``db.migrate.ensure_schema_current``). This script runs such commands in fresh processes on
one migrated SQLite database in a temporary home, for this working tree and (``--against``) a commit checked out as
a temporary git worktree on the same virtual environment, in the order A B, B A, ... It reads each command's CPU
(user + system) from ``os.wait4`` and prints the medians per command and code tree, and their ratio.

    python benchmarks/cli_start.py --against HEAD~1          # about a minute on 2 cores (5 rounds)
    python benchmarks/cli_start.py --against e9c6e8a --rounds 15     # the JSON in benchmarks/results

Writes ``benchmarks/results/<name>.json`` (default ``cli_start``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, worktree, write_json  # noqa: E402

COMMANDS = {  # name -> arguments of ``python -m flows.cli``
    "db current": ["db", "current"],
    "history": ["history", "--ticker", "TSLA"],
    "models list": ["models", "list"],
    "latest": ["latest"],
}


def command_env(code: Path, home: Path) -> dict[str, str]:
    """This environment without ``TSLA_FORECAST_*`` (no configured database is touched), on ``code`` and ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSLA_FORECAST_")}
    return env | {"PYTHONPATH": str(code), "TSLA_FORECAST_HOME": str(home)}


def cpu_of(code: Path, args: list[str], home: Path) -> float:
    """One fresh ``python -m flows.cli ARGS`` on the code in ``code``; its CPU seconds (it must succeed)."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=code, env=command_env(code, home),
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(args)} failed on {code} (exit {proc.returncode}):\n{err.read()[-3000:]}")
    return usage.ru_utime + usage.ru_stime


def short_sha(rev: str) -> str:
    """``rev`` as a short commit hash."""
    done = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", metavar="REV", required=True, help="the commit to measure side by side")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each command on each code tree (default 5)")
    parser.add_argument("--name", default="cli_start", help="JSON name under benchmarks/results")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    commits = {"against": short_sha(args.against), "this": f"{short_sha('HEAD')} and the working tree"}
    with tempfile.TemporaryDirectory(prefix="cli-start-") as tmp:
        home, against = Path(tmp) / "home", Path(tmp) / "against"
        trees = {"against": worktree(commits["against"], against), "this": ROOT}
        try:
            subprocess.run([sys.executable, "-m", "flows.cli", "db", "upgrade"], cwd=ROOT, env=command_env(ROOT, home),
                           check=True, capture_output=True)  # fmt: skip
            cpu: dict[str, dict[str, list[float]]] = {tree: {c: [] for c in COMMANDS} for tree in trees}
            for rnd in range(args.rounds):
                order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
                for command, argv in COMMANDS.items():
                    for tree in order:
                        cpu[tree][command].append(cpu_of(trees[tree], argv, home))
                print(f"round {rnd + 1}/{args.rounds} done", flush=True)
        finally:
            removed = subprocess.run(["git", "worktree", "remove", "--force", str(against)], cwd=ROOT)
            if removed.returncode != 0:
                print(f"could not remove the worktree {against}: run `git worktree prune`", file=sys.stderr)
    medians = {tree: {c: round(statistics.median(v), 3) for c, v in by.items()} for tree, by in cpu.items()}
    print(f"\n| command | {commits['against']} CPU s | this CPU s | ratio |\n|---|---:|---:|---:|")
    for command in COMMANDS:
        before, after = medians["against"][command], medians["this"][command]
        print(f"| `{command}` | {before:.3f} | {after:.3f} | {after / before:.2f} |")
    path = write_json(args.name, {"commits": commits, "rounds": args.rounds, "medians_s": medians,
                                  "runs_s": {t: {c: [round(x, 3) for x in v] for c, v in by.items()}
                                             for t, by in cpu.items()}})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
