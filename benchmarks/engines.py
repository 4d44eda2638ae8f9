"""CPU of a new model's fit and of a loaded model's day, with compiled functions shared per architecture or not.

    python benchmarks/engines.py                       # smoke and default, 4 models per mode and round, ~4 min
    python benchmarks/engines.py --presets default --models 6 --rounds 3

Every new Keras model used to trace its own epoch, validation and forecast functions. Now each architecture has
an engine (``forecaster.models.training.Engine``) that traces them once and into which every model's weights and
optimizer state are assigned. This script measures what that saves where it matters: a walk-forward refit or a
catch-up fits a new model, and each daily job loads the champion as a new model, fine-tunes it and forecasts.

Per preset and round, both modes run in turn in the same process, on the same TSLA windows (2023 and before):

* **per model**: the engines are dropped before every new or loaded model, so each one traces, as before (it also
  pays for building an engine, which the old code did not, so the ratios are somewhat high);
* **shared**: engines are kept, so only the first model of the process traces.

For each of ``--models`` models, ending one session later each: a full fit (``LSTMForecaster.fit``), then the
bundle saved and loaded back, one day of fine-tuning (``update``) and the forecast. CPU seconds are
``time.process_time()``, with TensorFlow on one thread as on a pinned worker (``TF_NUM_INTRAOP_THREADS`` and
``TF_NUM_INTEROP_THREADS`` default to 1 here): with two threads, their spinning on a shared machine makes CPU seconds
noisier than the effect (one such run gave 1.43x for ``default``'s fit, another 0.99x). The first model of each
mode in each round is reported apart (it traces in both). The forecasts of both modes are compared bit for bit.
Writes ``benchmarks/results/engines.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_tsla, write_json  # noqa: E402

UNTIL, HORIZON = "2023-12-29", 5
for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before TensorFlow loads (the forecaster imports it lazily)


def one_mode(preset: str, prices, n_models: int, shared: bool) -> tuple[list[dict], list[np.ndarray]]:
    """CPU seconds per model (fit; load + update + forecast) and the forecasts, in one mode."""
    from forecaster.models import training
    from forecaster.models.lstm import LSTMForecaster

    rows, forecasts = [], []
    end = len(prices) - n_models - 1
    for i in range(n_models):
        if not shared or i == 0:  # the first model of each mode traces in both
            training._ENGINES.clear()
        t0 = time.process_time()
        model = LSTMForecaster(preset, HORIZON).fit(prices.iloc[: end + i])
        fit_s = time.process_time() - t0
        with tempfile.TemporaryDirectory(prefix="engines-bench-") as tmp:
            model.save(Path(tmp) / "bundle")
            if not shared:
                training._ENGINES.clear()
            t0 = time.process_time()
            day = LSTMForecaster.load(Path(tmp) / "bundle").update(prices.iloc[: end + i + 1])
            frame = day.predict()
            day_s = time.process_time() - t0
        rows.append({"fit_cpu_s": round(fit_s, 3), "day_cpu_s": round(day_s, 3)})
        forecasts.append(frame.select_dtypes("number").to_numpy())
    return rows, forecasts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["smoke", "default"])
    parser.add_argument("--models", type=int, default=4, help="models per mode and round (the first is apart)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="engines")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    prices = load_tsla(UNTIL)
    results: dict[str, dict] = {}
    for preset in args.presets:
        runs: dict[str, list[dict]] = {"per_model": [], "shared": []}
        firsts: dict[str, list[dict]] = {"per_model": [], "shared": []}
        same = True
        for r in range(args.rounds):
            outputs = {}
            for mode in ("per_model", "shared") if r % 2 == 0 else ("shared", "per_model"):
                print(f"{preset} round {r + 1}/{args.rounds}: {mode} ...", flush=True)
                rows, outputs[mode] = one_mode(preset, prices, args.models, shared=mode == "shared")
                firsts[mode].append(rows[0])
                runs[mode].extend(rows[1:])
            same &= all(np.array_equal(a, b) for a, b in zip(outputs["per_model"], outputs["shared"], strict=True))
        summary = {
            mode: {key: round(statistics.median(row[key] for row in rows), 3) for key in ("fit_cpu_s", "day_cpu_s")}
            for mode, rows in runs.items()
        }
        results[preset] = {
            "median_after_first": summary,
            "ratio_per_model_over_shared": {
                key: round(summary["per_model"][key] / summary["shared"][key], 2) for key in ("fit_cpu_s", "day_cpu_s")
            },
            "first_models": firsts,
            "runs": runs,
            "forecasts_bit_identical": same,
        }
    print(f"\n{'preset':<10}{'step':<38}{'per model':>10}{'shared':>10}{'ratio':>8}")
    for preset, res in results.items():
        for key, label in (("fit_cpu_s", "full fit (CPU s)"), ("day_cpu_s", "load + fine-tune + forecast (CPU s)")):
            m = res["median_after_first"]
            print(f"{preset:<10}{label:<38}{m['per_model'][key]:>10.2f}{m['shared'][key]:>10.2f}"
                  f"{res['ratio_per_model_over_shared'][key]:>7.2f}x")  # fmt: skip
        print(f"{'':<10}forecasts bit-identical: {res['forecasts_bit_identical']}")
    path = write_json(args.name, {"until": UNTIL, "horizon": HORIZON, "models": args.models, "rounds": args.rounds,
                                  "results": results})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
