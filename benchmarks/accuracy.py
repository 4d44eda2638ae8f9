"""Real-data accuracy: walk-forward backtests of LSTM presets beside the baselines on the same origins.

    python benchmarks/accuracy.py                                   # default + seed000 over 2024 (the README table)
    python benchmarks/accuracy.py --presets default --start 2023-01-03 --end 2023-12-29 --until 2023-12-29 \
        --override lstm_units=64,64 --name candidates-2023         # model selection on data up to 2023 only

Prints a table per preset and writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import ast
import logging
import time

from _common import load_tsla, write_json

from forecaster.backtest import run_backtest
from forecaster.baselines import Drift, MovingAverage, Naive
from forecaster.lstm import LSTMForecaster
from forecaster.presets import get_preset

KEYS = ("rmse", "mae", "mape", "r2", "mase", "u2", "directional_accuracy", "coverage80", "coverage95", "n")


def _override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    parsed = ast.literal_eval(value)
    is_tuple = isinstance(getattr(get_preset("default"), key), tuple)
    return key, (tuple(parsed) if isinstance(parsed, list | tuple) else (parsed,)) if is_tuple else parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["default", "seed000"])
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--until", default=None, help="cut the data here (model selection must not see 2024)")
    parser.add_argument("--refit-every", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--override", action="append", default=[], help="preset field=value (all presets)")
    parser.add_argument("--name", default="accuracy")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    prices = load_tsla(args.until)
    overrides = dict(_override(o) for o in args.override)
    results = {}
    for name in args.presets:
        preset = get_preset(name).replace(**overrides)
        t0 = time.perf_counter()
        models = [LSTMForecaster(preset, args.horizon), Naive(), Drift(), MovingAverage()]
        result = run_backtest(models, prices, args.start, args.end, horizon=args.horizon, refit_every=args.refit_every)
        s = result.summary
        results[name] = {m: {k: s[m][k] for k in KEYS} for m in ("lstm", "naive", "drift", "moving_average")}
        results[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"\n{name} {overrides or ''} ({results[name]['seconds']} s), targets {args.start}..{args.end}")
        print(f"{'':<16}" + "".join(f"{k:>10}" for k in KEYS))
        for model in ("lstm", "naive", "drift", "moving_average"):
            print(f"{model:<16}" + "".join(f"{results[name][model][k]:>10.4g}" for k in KEYS))
    path = write_json(args.name, {"args": vars(args), "results": results})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
