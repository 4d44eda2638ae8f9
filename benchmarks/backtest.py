"""Cost and accuracy of the 1-year walk-forward backtest (targets in 2024) as a function of ``--refit-every``.

    python benchmarks/backtest.py                          # refit every 1, 5, 20, 60 sessions; default preset
    python benchmarks/backtest.py --settings 20 60          # a subset
    python benchmarks/backtest.py --budget-s 900            # allow each setting more time before it is shortened

The LSTM walks forward exactly as ``tsla-forecast backtest`` does: a full fit every N origins and a fine-tune
(``update``) at every other origin; the baselines are left out (they take milliseconds). Before the runs, one full
fit and a few updates are timed to estimate each setting's wall time. A setting whose estimate exceeds
``--budget-s`` is **measured on its first origins only** (as many as the budget allows, at least 20): its row says
so, its full-year time is then an extrapolation (seconds per origin x origins), and its accuracy is on that shorter
span, not comparable with the other rows.
Accuracy is at horizon 1: RMSE, Theil's U2 against naive (below 1 beats it) and the 80%/95% interval coverage.
Writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_tsla, write_json  # noqa: E402

START, END, HORIZON = "2024-01-02", "2024-12-31", 5
GOAL_S = 600.0  # the goal for --refit-every 20 with daily fine-tunes
KEYS = ("rmse", "u2", "coverage80", "coverage95", "n")


def probe(prices, preset: str, origins) -> dict[str, float]:
    """Seconds of one full fit and the median of five update + forecast steps, after an untimed warm-up fit
    (TensorFlow's import and first tracing are paid once per process, not per fit)."""
    from statistics import median

    from forecaster.models.lstm import LSTMForecaster

    LSTMForecaster(preset, HORIZON).fit(prices.loc[: origins[0]]).predict(HORIZON)
    model = LSTMForecaster(preset, HORIZON)
    t0 = time.perf_counter()
    model.fit(prices.loc[: origins[0]]).predict(HORIZON)
    fit_s = time.perf_counter() - t0
    updates = []
    for origin in origins[1:6]:
        t0 = time.perf_counter()
        model.update(prices.loc[:origin]).predict(HORIZON)
        updates.append(time.perf_counter() - t0)
    return {"fit_s": round(fit_s, 2), "update_s": round(median(updates), 3)}


def estimate(n_origins: int, refit_every: int, cost: dict[str, float]) -> float:
    """Estimated wall seconds of a walk-forward over ``n_origins`` origins."""
    fits = math.ceil(n_origins / refit_every)
    return fits * cost["fit_s"] + (n_origins - fits) * cost["update_s"]


def affordable(n_origins: int, refit_every: int, cost: dict[str, float], budget_s: float) -> int:
    """The most leading origins (at least 20) whose estimated time fits ``budget_s``."""
    n = n_origins
    while n > 20 and estimate(n, refit_every, cost) > budget_s:
        n -= 1
    return n


def run_setting(prices, preset: str, origins, refit_every: int, n: int) -> dict[str, Any]:
    """Walk forward over the first ``n`` origins; wall time and horizon-1 accuracy of the LSTM."""
    from forecaster.evaluation.backtest import run_backtest
    from forecaster.models.lstm import LSTMForecaster

    end = prices.index[prices.index.get_loc(origins[n - 1]) + 1]
    t0 = time.perf_counter()
    result = run_backtest([LSTMForecaster(preset, HORIZON)], prices, START, end, horizon=HORIZON,
                          refit_every=refit_every)  # fmt: skip
    seconds = time.perf_counter() - t0
    lstm = result.summary["lstm"]
    return {
        "refit_every": refit_every, "origins": n, "full_year_origins": len(origins), "shortened": n < len(origins),
        "span": f"{origins[0].date()}..{origins[n - 1].date()} (targets to {end.date()})",
        "fits": math.ceil(n / refit_every), "seconds": round(seconds, 1),
        "seconds_per_origin": round(seconds / n, 3),
        "full_year_seconds": round(seconds if n == len(origins) else seconds / n * len(origins), 1),
        **{k: lstm[k] for k in KEYS},
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, one row per setting."""
    head = ["refit every", "full fits", "origins measured", "wall (s)", "full year (s)", "RMSE", "U2", "cov80",
            "cov95"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        origins = f"{r['origins']} of {r['full_year_origins']}" + (" (shortened: budget)" if r["shortened"] else "")
        year = f"~{r['full_year_seconds']:.0f} (extrapolated)" if r["shortened"] else f"{r['full_year_seconds']:.0f}"
        lines.append(
            f"| {r['refit_every']} | {r['fits']} | {origins} | {r['seconds']:.0f} | {year} | {r['rmse']:.2f} | "
            f"{r['u2']:.3f} | {r['coverage80']:.2f} | {r['coverage95']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", type=int, default=[1, 5, 20, 60], help="refit-every values")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--budget-s", type=float, default=600.0, help="estimated seconds allowed per setting")
    parser.add_argument("--name", default="backtest")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from forecaster.evaluation.backtest import forecast_origins

    prices = load_tsla()
    origins = forecast_origins(prices, START, END)
    cost = probe(prices, args.preset, origins)
    print(f"probe: full fit {cost['fit_s']:.1f} s, update + forecast {cost['update_s'] * 1000:.0f} ms", flush=True)
    rows = []
    for refit in sorted(args.settings, reverse=True):
        n = affordable(len(origins), refit, cost, args.budget_s)
        print(f"refit every {refit}: {n} origins, estimated {estimate(n, refit, cost):.0f} s ...", flush=True)
        rows.append(run_setting(prices, args.preset, origins, refit, n))
        print(f"  {rows[-1]['seconds']:.0f} s, RMSE {rows[-1]['rmse']:.2f}, U2 {rows[-1]['u2']:.3f}", flush=True)
    text = table(rows)
    print(f"\n{args.preset}, targets {START}..{END} ({len(origins)} origins), H={HORIZON}, daily fine-tunes\n\n{text}")
    goal = next((r for r in rows if r["refit_every"] == 20 and not r["shortened"]), None)
    path = write_json(args.name, {"preset": args.preset, "start": START, "end": END, "horizon": HORIZON,
                                  "budget_s": args.budget_s, "probe": cost, "rows": rows, "table_markdown": text,
                                  "goal_refit20_s": GOAL_S,
                                  "goal_met": None if goal is None else goal["seconds"] <= GOAL_S})  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
