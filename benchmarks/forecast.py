"""Latency of one daily forecast (H=5 with 80%/95% intervals) from a loaded model.

    python benchmarks/forecast.py                 # default preset, 50 calls
    python benchmarks/forecast.py --preset seed000 --calls 20

Fits the preset on the TSLA closes up to 2024-12-19 (the daily job's example date), saves the bundle, loads it
back, and times ``LSTMForecaster.predict()``: the first call (it traces the model's predict function once) and the
median / 90th percentile of ``--calls`` further calls. The model-call step is also timed the ways it can be done,
on the same input window: our traced function, an eager ``model(x, training=False)`` and ``model.predict(x)``.
Writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_tsla, write_json  # noqa: E402

AS_OF, HORIZON, GOAL_MS = "2024-12-19", 5, 50.0


def timings_ms(call: Callable[[], object], n: int) -> dict[str, float]:
    """Median and 90th percentile of ``n`` calls, in milliseconds (after one untimed call)."""
    call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "p90_ms": round(float(np.percentile(samples, 90)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--name", default="forecast")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from forecaster.models import training
    from forecaster.models.lstm import LSTMForecaster

    prices = load_tsla(AS_OF)
    with tempfile.TemporaryDirectory(prefix="forecast-bench-") as tmp:
        LSTMForecaster(args.preset, HORIZON).fit(prices).save(Path(tmp) / "bundle")
        t0 = time.perf_counter()
        model = LSTMForecaster.load(Path(tmp) / "bundle")
        load_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    model.predict()
    first_ms = (time.perf_counter() - t0) * 1000
    net = model.model_

    def features() -> np.ndarray:
        window = model._data(model.recent_, extra=0)
        return window.x_windows(model.x_scaler_, window.n_origins - 1)

    x = features()
    results = {
        "predict": timings_ms(model.predict, args.calls),
        "features_only": timings_ms(features, args.calls),
        "model_call_traced": timings_ms(lambda: training.predict_function(net)(x), args.calls),
        "model_call_eager": timings_ms(lambda: np.asarray(net(x, training=False)), args.calls),
        "model_call_keras_predict": timings_ms(lambda: net.predict(x, verbose=0), args.calls),
    }
    median = results["predict"]["median_ms"]
    print(f"{args.preset}: bundle load {load_ms:.0f} ms, first forecast {first_ms:.0f} ms (traces once)")
    print(f"{'':<28}{'median ms':>10}{'p90 ms':>10}")
    for key, r in results.items():
        print(f"{key:<28}{r['median_ms']:>10.2f}{r['p90_ms']:>10.2f}")
    print(f"\none daily forecast: {median:.1f} ms median over {args.calls} calls (goal < {GOAL_MS:.0f} ms: "
          f"{'met' if median < GOAL_MS else 'MISSED'})")  # fmt: skip
    path = write_json(args.name, {"preset": args.preset, "as_of": AS_OF, "horizon": HORIZON, "calls": args.calls,
                                  "load_ms": round(load_ms, 1), "first_predict_ms": round(first_ms, 1),
                                  "results": results, "goal_ms": GOAL_MS, "goal_met": median < GOAL_MS})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
