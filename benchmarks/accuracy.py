"""Real-data accuracy: walk-forward backtests of LSTM presets beside the baselines, all with the same intervals.

    python benchmarks/accuracy.py                                   # default over 2024 (docs/accuracy.md)
    python benchmarks/accuracy.py --presets seed000 --name accuracy-seed000
    python benchmarks/accuracy.py --start 2023-01-03 --end 2023-12-29 --until 2023-12-29 \
        --intervals plain ewma head --aci 0 0.005 --name select-intervals-2023   # selection, data up to 2023 only

Every model walks forward on the same origins (``forecaster.backtest.walk_forward``). The baselines are naive, SES
and drift, each with plain split-conformal and with EWMA-scaled conformal intervals. For horizons 1 and 5 it reports
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

import numpy as np
import pandas as pd
from _common import load_tsla, write_json
from scipy import stats

from forecaster.backtest import forecast_origins, walk_forward
from forecaster.baselines import SES, Drift, Naive
from forecaster.lstm import LSTMForecaster
from forecaster.presets import get_preset

HORIZONS = (1, 5)
KEYS = ("rmse", "u2", "cov80", "cov95", "cov80_calm", "cov80_mid", "cov80_wild", "w80", "w95", "dm_p", "n")


# -- scoring: private helpers, to be replaced by forecaster.metrics once merged ------------------------------------
def _winkler(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray, alpha: float) -> float:
    """Mean Winkler interval score: width plus ``2 / alpha`` times the distance by which the actual misses."""
    miss = np.maximum(lo - actual, 0.0) + np.maximum(actual - hi, 0.0)
    return float(np.mean(hi - lo + 2.0 / alpha * miss))


def _dm_pvalue(err: np.ndarray, naive_err: np.ndarray, h: int) -> float:
    """Two-sided Diebold-Mariano p-value of squared errors with the Harvey-Leybourne-Newbold correction."""
    d = err**2 - naive_err**2
    n = d.size
    if not np.any(d):
        return float("nan")  # the same forecasts: nothing to test
    c = d - d.mean()
    var = float(c @ c) / n + 2.0 * sum(float(c[k:] @ c[:-k]) / n for k in range(1, h))
    if var <= 0:
        return float("nan")
    stat = d.mean() / np.sqrt(var / n) * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(2.0 * stats.t.sf(abs(stat), df=n - 1))


def _trailing_vol(prices: pd.DataFrame) -> pd.Series:
    """Mean |log return| of the 20 sessions up to each date (known at that date's close)."""
    return np.log(prices["close"]).diff().abs().rolling(20).mean()


def _score(frame: pd.DataFrame, naive: pd.DataFrame, vol: pd.Series, h: int) -> dict[str, float]:
    """The KEYS for one model at horizon ``h`` (``naive`` holds the same rows of the plain naive model)."""
    f = frame[frame["horizon"] == h].reset_index(drop=True)
    y, point = f["actual"].to_numpy(), f["point"].to_numpy()
    naive_point = naive[naive["horizon"] == h]["point"].to_numpy()
    hit80 = (f["lo80"] <= f["actual"]) & (f["actual"] <= f["hi80"])
    terciles = pd.qcut(vol.reindex(f["as_of"]).to_numpy(), 3, labels=["calm", "mid", "wild"])
    rmse = float(np.sqrt(np.mean((y - point) ** 2)))
    out = {
        "rmse": rmse, "u2": rmse / float(np.sqrt(np.mean((y - naive_point) ** 2))),
        "cov80": float(hit80.mean()), "cov95": float(((f["lo95"] <= y) & (y <= f["hi95"])).mean()),
        "w80": _winkler(y, f["lo80"].to_numpy(), f["hi80"].to_numpy(), 0.2),
        "w95": _winkler(y, f["lo95"].to_numpy(), f["hi95"].to_numpy(), 0.05),
        "dm_p": _dm_pvalue(y - point, y - naive_point, h), "n": float(len(f)),
    }  # fmt: skip
    for name in ("calm", "mid", "wild"):
        out[f"cov80_{name}"] = float(hit80[np.asarray(terciles == name)].mean())
    return out


# -- models -----------------------------------------------------------------------------------------------------
def _override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    parsed = ast.literal_eval(value)
    is_tuple = isinstance(getattr(get_preset("default"), key), tuple)
    return key, (tuple(parsed) if isinstance(parsed, list | tuple) else (parsed,)) if is_tuple else parsed


def _baselines() -> dict[str, Any]:
    return {
        f"{cls.name}_{interval}": cls(interval=interval)
        for cls, interval in itertools.product((Naive, SES, Drift), ("plain", "ewma"))
    }


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
    vol = _trailing_vol(prices)
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
    naive = scored["naive_plain"]
    scores = {label: {h: _score(f, naive, vol, h) for h in HORIZONS} for label, f in scored.items()}
    print(f"\ntargets {args.start}..{args.end}, refit every {args.refit_every}, {overrides or ''}")
    for h in HORIZONS:
        print(_table(scores, h))
    path = write_json(args.name, {"args": vars(args), "seconds": seconds, "results": scores})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
