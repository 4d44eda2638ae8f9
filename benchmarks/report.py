"""CPU of one daily report (``make_report``: tables, 11 figures, HTML, archive, index), this code against another.

    python benchmarks/report.py                        # the working tree alone
    python benchmarks/report.py --against b789f46      # side by side with a commit, alternating (A B B A ...)

Each measurement is a fresh process with ``PYTHONPATH`` set to one code tree (the commit's is a temporary git
worktree, on the same virtual environment). It seeds a report history through the repository (the test suite's
``tests/report/seed.py``: 300 synthetic sessions, a daily run with forecasts on each of the last ``--runs``), makes
one untimed report, then times ``--reports`` more with ``time.thread_time`` (matplotlib draws on the calling
thread) and prints their median, with the step timings of the last report and the SHA-256 of its figures: the code
trees must draw the same PNGs, byte for byte, or the script says so. Writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, worktree, write_json  # noqa: E402

MEASURE = r"""
import hashlib, json, os, statistics, sys, tempfile, time
from pathlib import Path

home = Path(tempfile.mkdtemp(prefix="report-bench-"))
os.environ.update(TSLA_FORECAST_HOME=str(home), MPLCONFIGDIR=str(home / "mpl"), TSLA_FORECAST_EMAIL_ENABLED="false")
from db import migrate
from db.repository import Repository
from flows.report import render
from flows.report.archive import make_report
from flows.report.data import load_report_inputs
from flows.settings import Settings
from tests.report.seed import TICKER, seed_history

runs, reports = int(sys.argv[1]), int(sys.argv[2])
migrate.upgrade(f"sqlite:///{home / 'forecast.db'}")
repo = Repository.from_url(f"sqlite:///{home / 'forecast.db'}")
seed_history(repo, runs=runs)
settings = Settings()
make_report(repo, settings, TICKER)
cpu = []
for _ in range(reports):
    started = time.thread_time()
    make_report(repo, settings, TICKER)
    cpu.append(time.thread_time() - started)
inputs = load_report_inputs(repo, TICKER)
steps = {}
started = time.thread_time()
summary = render.build_summary(inputs, drift_u2=settings.drift_u2)
steps["summary_s"] = time.thread_time() - started
started = time.thread_time()
figures = render.draw_figures(inputs)
steps["figures_built_s"] = time.thread_time() - started
started = time.thread_time()
pngs = {name: render.plots.png_bytes(fig) for name, fig in figures.items()}
steps["figures_saved_s"] = time.thread_time() - started
from forecaster.evaluation import metrics
from forecaster.plots.figures import _matured
h1 = _matured(inputs.outcomes.assign(model="Model"), horizon=1)
started = time.thread_time()
metrics.rolling_score(h1, 20, ("rmse", "naive_rmse", "u2"))
steps["rolling_skill_scores_s"] = time.thread_time() - started
import shutil
repo.dispose()
shutil.rmtree(home, ignore_errors=True)
print(json.dumps({"median_s": statistics.median(cpu), "reports_s": cpu, "steps": steps,
                  "figures_sha256": {n: hashlib.sha256(p).hexdigest() for n, p in pngs.items()}}))
"""


def measure(code: Path, runs: int, reports: int) -> dict:
    """One fresh process on the code in ``code``; its JSON line."""
    env = os.environ | {"PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(runs), str(reports)], cwd=code, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the measurement on {code} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", metavar="REV", help="a commit to measure side by side (alternating)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each code tree (default 3)")
    parser.add_argument("--reports", type=int, default=7, help="timed reports per measurement (default 7)")
    parser.add_argument("--runs", type=int, default=140, help="daily runs in the seeded history (default 140)")
    parser.add_argument("--name", default="report")
    args = parser.parse_args()
    if min(args.rounds, args.reports, args.runs) < 1:
        parser.error("--rounds, --reports and --runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="report-bench-tree-") as tmp:
        trees = {"this": ROOT}
        if args.against:
            trees = {args.against: worktree(args.against, Path(tmp) / "against"), "this": ROOT}
        try:
            results: dict[str, list[dict]] = {name: [] for name in trees}
            for rnd in range(args.rounds):
                order = list(trees) if rnd % 2 == 0 else list(reversed(trees))  # A B, B A, A B, ...
                for name in order:
                    result = measure(trees[name], args.runs, args.reports)
                    results[name].append(result)
                    print(f"round {rnd + 1} {name}: median {result['median_s']:.3f} s of CPU per report", flush=True)
        finally:
            if args.against:
                subprocess.run(["git", "worktree", "remove", "--force", str(trees[args.against])], cwd=ROOT)
    summary = {name: {"median_of_medians_s": round(statistics.median(r["median_s"] for r in rs), 3),
                      "medians_s": [round(r["median_s"], 3) for r in rs],
                      "steps_s": {k: round(statistics.median(r["steps"][k] for r in rs), 3) for k in rs[0]["steps"]}}
               for name, rs in results.items()}  # fmt: skip
    hashes = {name: rs[-1]["figures_sha256"] for name, rs in results.items()}
    same = len({json.dumps(h, sort_keys=True) for h in hashes.values()}) == 1
    for name, s in summary.items():
        print(f"{name}: {s['median_of_medians_s']:.3f} s per report (medians {s['medians_s']}); steps {s['steps_s']}")
    if args.against:
        ratio = summary[args.against]["median_of_medians_s"] / summary["this"]["median_of_medians_s"]
        print(f"{args.against} / this: {ratio:.2f}x; figures byte-identical: {same}")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip() != ""  # fmt: skip
    this = head.stdout.strip() + ("+uncommitted" if dirty else "")
    path = write_json(args.name, {"date": dt.date.today().isoformat(), "this": this, "runs": args.runs,
                                  "reports": args.reports, "rounds": args.rounds, "against": args.against,
                                  "summary": summary, "figures_identical": same, "figures_sha256": hashes})  # fmt: skip
    print(f"wrote {path}")
    if not same:
        raise SystemExit("the code trees drew different figures: " + ", ".join(
            n for n in hashes["this"] if len({h.get(n) for h in hashes.values()}) > 1))  # fmt: skip


if __name__ == "__main__":
    main()
