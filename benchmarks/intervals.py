"""Interval skill per horizon: the LSTM's interval heads beside plain, EWMA, range-EWMA and GARCH-t scales (issue #19).

    python benchmarks/intervals.py                                     # 2024 and 2022-23, default preset
    python benchmarks/intervals.py --presets default default_v2 default_v1 --periods 2024
    python benchmarks/intervals.py --presets "default_v2+interval='quantile'+quantile_norm='range'" --no-baselines
    python benchmarks/intervals.py --presets none --periods 2023 --until 2023-12-29 --name intervals-select
                                                                       # selection: data up to 2023 only

Every model has the naive point and split-conformal intervals from its last 250 matured normalised residuals; they
differ only in the scale known at the origin, except the quantile head (``interval="quantile"``, today's
``default``), whose own quantile band is conformalised per horizon (CQR) on its last 250 matured scores. Every
model walks forward on the same origins (``forecaster.evaluation.backtest.walk_forward``, refit every 20) and is
scored by
``forecaster.evaluation.metrics.score``: W80 (80% Winkler score, USD, lower is better), cov80/cov95, the 80%
coverage per tercile of the trailing 20-day volatility at the origin, and the Kupiec (POF) and Christoffersen
(conditional coverage) p-values, computed on every h-th origin at horizon h (non-overlapping targets).
Prints the tables and writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import ast
import logging
import time
from typing import Any

import pandas as pd
from _common import load_tsla, write_json

from forecaster.evaluation.backtest import forecast_origins, walk_forward
from forecaster.evaluation.metrics import score_by_horizon, with_volatility
from forecaster.models.baselines import Garch, Naive, RangeEWMA
from forecaster.models.lstm import LSTMForecaster
from forecaster.models.presets import Preset, get_preset

PERIODS = {"2024": ("2024-01-02", "2024-12-31"), "2022-23": ("2022-01-03", "2023-12-29"),
           "2023": ("2023-01-03", "2023-12-29"), "2021": ("2021-01-04", "2021-12-31")}  # fmt: skip
KEYS = ("winkler80", "winkler95", "coverage80", "coverage95", "coverage80_calm", "coverage80_mid", "coverage80_wild",
        "pinball", "u2", "pof_p80", "cc_p80", "pof_p95", "cc_p95", "traffic80", "traffic95")  # fmt: skip
H = 5


def baselines() -> dict[str, Any]:
    """The classical scales, each with the naive point."""
    return {
        "naive": Naive(),
        "ewma_r2": Naive(interval="ewma"),
        "parkinson_ewma": Naive(interval="parkinson"),
        "range_ewma": RangeEWMA(),
        "garch": Garch(),
    }


def preset(spec: str) -> Preset:
    """``name`` or ``name+field=value+...`` (values are Python literals): a preset with overrides."""
    name, *changes = spec.split("+")
    base = get_preset(name)
    values = {k: ast.literal_eval(v) for k, v in (c.split("=", 1) for c in changes)}
    values = {k: tuple(v) if isinstance(getattr(base, k), tuple) else v for k, v in values.items()}
    return base.replace(**values)


def run_period(models: dict[str, Any], prices: pd.DataFrame, start: str, end: str, refit: int) -> dict[str, Any]:
    """Walk every model forward on the same origins; scores by horizon and seconds per model."""
    origins = forecast_origins(prices, start, end)
    scores, seconds = {}, {}
    for label, model in models.items():
        t0 = time.perf_counter()
        frame = walk_forward(model, prices, origins, horizon=H, refit_every=refit).assign(model=label)
        seconds[label] = round(time.perf_counter() - t0, 1)
        frame = frame[(frame["target_date"] >= start) & (frame["target_date"] <= end)]
        scores[label] = score_by_horizon(with_volatility(frame, prices["close"]), metrics=KEYS)
        print(f"  {label}: {seconds[label]} s", flush=True)
    return {"start": start, "end": end, "seconds": seconds, "scores": scores}


def tables(result: dict[str, Any]) -> str:
    """W80 per horizon (with the gain over plain naive), coverage, terciles and backtest p-values."""
    scores = result["scores"]
    base = scores["naive"]
    out = ["W80 (gain over plain naive)".ljust(24) + "".join(f"{'h=' + str(h):>17}" for h in range(1, H + 1))]
    for label, per_h in scores.items():
        cells = (f"{per_h[h]['winkler80']:8.2f} ({100 * (1 - per_h[h]['winkler80'] / base[h]['winkler80']):+5.1f}%)"
                 for h in range(1, H + 1))  # fmt: skip
        mean = sum(1 - per_h[h]["winkler80"] / base[h]["winkler80"] for h in range(1, H + 1)) / H
        out.append(f"  {label:<22}" + "".join(f"{c:>17}" for c in cells) + f"   mean {100 * mean:+.1f}%")
    out.append("cov80 / cov95 | calm / mid / wild | POF p80, CC p80, CC p95")
    for label, per_h in scores.items():
        for h in range(1, H + 1):
            s = per_h[h]
            out.append(
                f"  {label:<22} h={h} {s['coverage80']:.3f} / {s['coverage95']:.3f} | "
                f"{s['coverage80_calm']:.2f} / {s['coverage80_mid']:.2f} / {s['coverage80_wild']:.2f} | "
                f"{s['pof_p80']:.3f}, {s['cc_p80']:.3f}, {s['cc_p95']:.3f}"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["default"], help="LSTM presets ('none': baselines only)")
    parser.add_argument("--periods", nargs="+", default=["2024", "2022-23"], choices=list(PERIODS))
    parser.add_argument("--until", default=None, help="cut the data here (selection must not see later data)")
    parser.add_argument("--refit-every", type=int, default=20)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--name", default="intervals")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    prices = load_tsla(args.until)
    results = {}
    for period in args.periods:
        start, end = PERIODS[period]
        print(f"targets {start}..{end}", flush=True)
        models = {} if args.no_baselines else baselines()
        if args.no_baselines:
            models["naive"] = Naive()  # the reference of every gain
        models |= {f"lstm_{p}": LSTMForecaster(preset(p), H) for p in args.presets if p != "none"}
        results[period] = run_period(models, prices, start, end, args.refit_every)
        print(tables(results[period]), flush=True)
    path = write_json(args.name, {"args": vars(args), "results": results})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
