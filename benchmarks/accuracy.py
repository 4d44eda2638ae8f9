"""Real-data accuracy: walk-forward backtests of LSTM presets beside the baselines, all with the same intervals.

    python benchmarks/accuracy.py                                   # default over 2024 (docs/accuracy.md)
    python benchmarks/accuracy.py --presets seed000 --name accuracy-seed000
    python benchmarks/accuracy.py --start 2023-01-03 --end 2023-12-29 --until 2023-12-29 \
        --intervals plain ewma head --aci 0 0.005 --name select-intervals-2023   # selection, data up to 2023 only

Every model walks forward on the same origins (``forecaster.evaluation.backtest.walk_forward``). The baselines are
naive, SES
and drift, each with plain split-conformal and with EWMA-scaled conformal intervals, plus the naive point with
Garman-Klass + gap range-EWMA and GARCH(1,1)-t intervals (``benchmarks/intervals.py`` compares the scales per
horizon). For horizons 1 and 5 it reports
RMSE, Theil's U2, 80%/95% coverage, 80% coverage per volatility tercile (trailing 20-day mean |log return| at the
origin), the Winkler score W80/W95 and the Diebold-Mariano (HLN) p-value of squared errors against naive.
Prints a table per preset and writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import logging
import time
from typing import Any

import pandas as pd
from _common import load_tsla, write_json

from forecaster.evaluation.backtest import forecast_origins, walk_forward
from forecaster.evaluation.metrics import score, with_volatility
from forecaster.models.baselines import SES, Drift, Garch, Naive, RangeEWMA
from forecaster.models.lstm import LSTMForecaster
from forecaster.models.presets import get_preset

HORIZONS = (1, 5)
# forecaster.evaluation.metrics.score names, in table order
KEYS = ("rmse", "u2", "coverage80", "coverage95", "coverage80_calm", "coverage80_mid", "coverage80_wild",
        "winkler80", "winkler95", "dm_pvalue")  # fmt: skip


# -- models -----------------------------------------------------------------------------------------------------
def _override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    parsed = ast.literal_eval(value)
    is_tuple = isinstance(getattr(get_preset("default"), key), tuple)
    return key, (tuple(parsed) if isinstance(parsed, list | tuple) else (parsed,)) if is_tuple else parsed


def _baselines() -> dict[str, Any]:
    plain_and_ewma = {
        f"{cls.name}_{interval}": cls(interval=interval)
        for cls, interval in itertools.product((Naive, SES, Drift), ("plain", "ewma"))
    }
    return plain_and_ewma | {"range_ewma": RangeEWMA(), "garch": Garch()}


def _run(label: str, model: Any, prices: pd.DataFrame, origins, args) -> tuple[pd.DataFrame, float]:
    t0 = time.perf_counter()
    frame = walk_forward(model, prices, origins, horizon=args.horizon, refit_every=args.refit_every)
    seconds = round(time.perf_counter() - t0, 1)
    print(f"  {label}: {seconds} s", flush=True)
    return frame.assign(model=label), seconds


def _table(scores: dict[str, dict[int, dict[str, float]]], h: int) -> str:
    lines = [f"h={h}  " + f"{'':<22}" + "".join(f"{k:>11}" for k in KEYS)]
    for model, per_h in scores.items():
        lines.append(f"     {model:<24}" + "".join(f"{per_h[h][k]:>11.4g}" for k in KEYS))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["default"])
    parser.add_argument("--intervals", nargs="+", default=[None], help="LSTM interval scales (default: preset's)")
    parser.add_argument("--aci", nargs="+", type=float, default=[None], help="ACI gamma values (default: preset's)")
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
    origins = forecast_origins(prices, args.start, args.end)
    overrides = dict(_override(o) for o in args.override)
    frames, seconds = {}, {}
    for name, interval, gamma in itertools.product(args.presets, args.intervals, args.aci):
        preset = get_preset(name).replace(**overrides)
        preset = preset.replace(**{k: v for k, v in (("interval", interval), ("aci_gamma", gamma)) if v is not None})
        label = f"lstm_{name}_{preset.interval}" + (f"_aci{preset.aci_gamma:g}" if preset.aci_gamma else "")
        frames[label], seconds[label] = _run(label, LSTMForecaster(preset, args.horizon), prices, origins, args)
    for label, model in _baselines().items():
        frames[label], seconds[label] = _run(label, model, prices, origins, args)
    scored = {k: f[(f["target_date"] >= args.start) & (f["target_date"] <= args.end)] for k, f in frames.items()}
    scores = {
        label: {h: score(with_volatility(f[f["horizon"] == h], prices["close"]), metrics=KEYS) for h in HORIZONS}
        for label, f in scored.items()
    }
    print(f"\ntargets {args.start}..{args.end}, refit every {args.refit_every}, {overrides or ''}")
    for h in HORIZONS:
        print(_table(scores, h))
    path = write_json(args.name, {"args": vars(args), "seconds": seconds, "results": scores})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
