"""The deployed policy against the fixed schedule: accuracy per horizon and wall time, side by side in one run.

    python benchmarks/policy.py                       # 2024 (out of sample), default preset, 2 timing rounds
    python benchmarks/policy.py --start 2022-01-03 --end 2023-12-29 --rounds 1 --name policy-2022-23

Runs, on the same origins, the LSTM as ``backtest --policy production`` runs it (the champion/challenger step of
the daily job, with the default :class:`flows.settings.Settings` knobs: full retrain bound 20 sessions, gate
window 10, pinball gate) and as ``--policy schedule --refit-every 20`` runs it (a full fit every 20 origins, a
fine-tune at every other), beside naive. Wall times are measured alternately, ``--rounds`` times each, and the
ratio of the medians is reported. Prints the table per horizon (U2, W80, W95, cov80, cov95, pinball) and the
policy's counts; writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_tsla, write_json  # noqa: E402

HORIZON = 5
KEYS = ("u2", "winkler80", "winkler95", "coverage80", "coverage95", "pinball")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds of each policy (medians compared)")
    parser.add_argument("--name", default="policy")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import pandas as pd

    from flows.settings import Settings
    from forecaster.evaluation import metrics
    from forecaster.evaluation.backtest import forecast_origins, summarise, walk_forward
    from forecaster.models.baselines import Naive
    from forecaster.models.lstm import LSTMForecaster
    from forecaster.models.presets import get_preset
    from forecaster.policy import trail_counts
    from forecaster.step import PolicyForecaster

    prices, preset = load_tsla(), get_preset(args.preset)
    origins = forecast_origins(prices, args.start, args.end)
    knobs = Settings(_env_file=None).policy()  # type: ignore[call-arg]

    def production() -> PolicyForecaster:
        return PolicyForecaster(preset, HORIZON, knobs)

    def schedule() -> LSTMForecaster:
        model = LSTMForecaster(preset, HORIZON)
        model.name = "lstm_schedule"
        return model

    LSTMForecaster(preset, HORIZON).fit(prices.loc[: origins[0]])  # warm-up: TensorFlow's import and tracing
    seconds: dict[str, list[float]] = {"production": [], "schedule": []}
    frames: dict[str, pd.DataFrame] = {}
    trail: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for name, make in (("production", production), ("schedule", schedule)):
            model = make()
            t0 = time.perf_counter()
            frames[name] = walk_forward(model, prices, origins, horizon=HORIZON, refit_every=20)
            seconds[name].append(time.perf_counter() - t0)
            if isinstance(model, PolicyForecaster):
                trail = model.trail_
            print(f"round {round_ + 1}: {name} {seconds[name][-1]:.1f} s", flush=True)
    frames["naive"] = walk_forward(Naive(), prices, origins, horizon=HORIZON)
    forecasts = metrics.with_volatility(pd.concat(frames.values(), ignore_index=True), prices["close"])
    scale = metrics.naive_scale(prices.loc[: origins[0], "close"].to_numpy())
    summary = summarise(forecasts, scale, pd.Timestamp(args.start), pd.Timestamp(args.end))
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    ratio = medians["production"] / medians["schedule"]
    rows = {name: {h: {k: s[k] for k in (*KEYS, "n")} for h, s in summary["by_horizon"][name].items()}
            for name in ("lstm", "lstm_schedule", "naive")}  # fmt: skip
    text = _table(rows)
    counts = trail_counts(trail)
    print(f"\n{args.preset}, targets {args.start}..{args.end} ({len(origins)} origins), H={HORIZON}\n\n{text}")
    print(f"\npolicy: {counts}")
    print(f"wall (median of {args.rounds}): production {medians['production']:.1f} s, schedule "
          f"{medians['schedule']:.1f} s, ratio {ratio:.2f} (goal <= 1.5)")  # fmt: skip
    path = write_json(args.name, {
        "preset": args.preset, "start": args.start, "end": args.end, "horizon": HORIZON, "policy_settings": vars(knobs),
        "seconds": seconds, "median_seconds": medians, "ratio": ratio, "goal_ratio": 1.5, "goal_met": ratio <= 1.5,
        "counts": counts, "trail": trail, "by_horizon": rows, "table_markdown": text,
    })  # fmt: skip
    print(f"wrote {path}")


def _table(rows: dict[str, dict[int, dict[str, float]]]) -> str:
    """Markdown: one row per model and horizon."""
    names = {"lstm": "production policy", "lstm_schedule": "schedule (refit 20)", "naive": "naive"}
    head = ["model", "h", "U2", "W80", "W95", "cov80", "cov95", "pinball", "n"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for h in sorted(next(iter(rows.values()))):
        for name, per_h in rows.items():
            s = per_h[h]
            cells = [f"{s['u2']:.3f}", f"{s['winkler80']:.2f}", f"{s['winkler95']:.2f}", f"{s['coverage80']:.3f}",
                     f"{s['coverage95']:.3f}", f"{s['pinball']:.3f}", str(s["n"])]  # fmt: skip
            lines.append(f"| {names[name]} | {h} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
