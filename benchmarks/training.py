"""Training throughput of our path against a plain Keras reference, on the real TSLA data.

    python benchmarks/training.py                                 # default seed000 seed001 seed002, ~4 min
    python benchmarks/training.py --presets default --rounds 3
    KERAS_BACKEND=jax python benchmarks/training.py --name training-gpu   # on a GPU machine

Each preset runs in its own child process (so its peak RSS is its own). In it, side by side:

* **ours**: ``forecaster.models.training.fit`` on the windows that ``LSTMForecaster.fit`` builds
(``features.WindowedData``,
  train-only scalers, train | gap | validation split), the model from ``forecaster.models.networks.build_model``;
* **reference**: the same layers declared again in a plain ``keras.Sequential``, compiled the same way (Adam, MSE,
  MAE metric), trained with ``model.fit(x, y, batch_size=..., validation_data=(...), shuffle=True)`` on the same
  NumPy arrays, as the seed write-ups do. Same batch size, epochs and validation slice; the parameter counts
  are checked equal.

Rounds alternate ours / reference (``--epochs`` epochs each), so load from other processes hits both alike.
Steady state: the median epoch time (validation included), leaving out the first round (tracing) and each call's
first epoch. GFLOP/s: analytic matmul FLOPs (forward 2 per multiply-add; training 3x forward; validation forward
only) per epoch over that time. **% of matmul peak**: each steady epoch's GFLOP/s over the fp32 matmul rate of the
backend (2048 x 2048) measured in the same process right before and after that call (the higher of the two; the
machine is shared, so a peak taken at another moment would compare different loads), median over the epochs. The
best matmul rate of the whole run (1024-4096, best of 3, before and after the rounds) is given too, as the
uncontended peak. ``--full`` presets also get one whole fit per path from a fresh model with the
preset's epochs and early stopping, tracing included. Writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_tsla, write_json  # noqa: E402

PRESETS = ("default", "seed000", "seed001", "seed002")
# Epochs per round: enough for a steady median, few enough that seed000 (about 2.5 s an epoch) fits the budget.
EPOCHS = {"default": 6, "seed000": 4, "seed001": 4, "seed002": 4}
FULL_FIT = ("default", "seed001", "seed002")  # seed000 fits run 300 epochs: about 12 min per path on 2 cores
HORIZON = 5


def reference_model(preset, n_features: int, horizon: int):
    """The preset's architecture declared with plain Keras layers, compiled as the write-ups do."""
    import keras
    from keras import layers

    from forecaster.models.networks import OUTPUTS_PER_HORIZON, quantile_head_loss

    keras.utils.set_random_seed(preset.seed)
    stack: list[Any] = [keras.Input((preset.window, n_features))]
    last = len(preset.lstm_units) - 1
    stack += [layers.LSTM(u, activation=preset.activation, return_sequences=i < last)
              for i, u in enumerate(preset.lstm_units)]  # fmt: skip
    stack += [layers.Dense(u, activation="relu") for u in preset.dense_units]
    stack += [layers.Dropout(preset.dropout)] if preset.dropout else []
    stack += [layers.BatchNormalization()] if preset.batch_norm else []
    model = keras.Sequential([*stack, layers.Dense(horizon * OUTPUTS_PER_HORIZON.get(preset.interval, 1))])
    loss = quantile_head_loss if preset.interval == "quantile" else "mse"  # the quantile head's loss is ours
    model.compile(optimizer=keras.optimizers.Adam(preset.learning_rate), loss=loss, metrics=["mae"])
    return model


def forward_flops(preset, n_features: int, horizon: int) -> float:
    """Matmul FLOPs of one sample's forward pass (LSTM gates over every time step, then the dense head)."""
    flops, width = 0.0, n_features
    for units in preset.lstm_units:
        flops += preset.window * 2 * 4 * units * (width + units)
        width = units
    for units in (*preset.dense_units, horizon):
        flops += 2 * width * units
        width = units
    return flops


def matmul_peak(trials: int = 3) -> dict[str, float]:
    """Best fp32 matmul GFLOP/s of the Keras backend here, per size (best of ``trials``; 8192 only on a GPU)."""
    backend = _backend()
    best: dict[str, float] = {}
    for n in (1024, 2048, 4096, 8192):
        run = _matmul_runner(backend, n)
        if run is None:
            continue
        run(1)
        reps = max(3, int(2e10 / (2 * n**3)))
        for _ in range(trials):
            t0 = time.perf_counter()
            run(reps)
            best[str(n)] = max(best.get(str(n), 0.0), round(2 * n**3 * reps / (time.perf_counter() - t0) / 1e9, 1))
    return best


def _matmul_runner(backend: str, n: int):
    """``run(reps)``: ``reps`` n x n fp32 matmuls on the default device, synchronised at the end."""
    if backend == "tensorflow":
        import tensorflow as tf

        if n > 4096 and not tf.config.list_physical_devices("GPU"):
            return None
        a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
        mm = tf.function(tf.matmul)
        return lambda reps: [mm(a, b) for _ in range(reps)][-1].numpy()
    if backend == "jax":
        import jax

        if n > 4096 and jax.default_backend() == "cpu":
            return None
        a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype="float32")
        mm = jax.jit(lambda x, y: jax.numpy.matmul(x, y, precision="highest"))
        return lambda reps: [mm(a, a) for _ in range(reps)][-1].block_until_ready()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if n > 4096 and device == "cpu":
        return None
    a = torch.randn(n, n, device=device)

    def run(reps: int) -> None:
        for _ in range(reps):
            a @ a
        if device == "cuda":
            torch.cuda.synchronize()

    return run


class EpochTimer:
    """Keras callback factory: records every epoch's wall seconds, one list per call."""

    def __init__(self) -> None:
        import keras

        self.calls: list[list[float]] = []
        self.probes: list[float] = []  # the matmul GFLOP/s measured around each call (the higher of before/after)
        timer = self

        class _Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                timer.calls.append([])

            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.calls[-1].append(time.perf_counter() - self._t0)

        self.callback = _Callback()

    def steady(self) -> list[float]:
        """Epoch seconds after the first call, without each call's first epoch."""
        return [t for call in self.calls[1:] for t in call[1:]]

    def efficiency(self, flops_epoch: float) -> float:
        """Median over the steady epochs of (epoch GFLOP/s / matmul GFLOP/s measured around the same call)."""
        ratios = [flops_epoch / t / 1e9 / probe for call, probe in zip(self.calls[1:], self.probes[1:], strict=True)
                  for t in call[1:]]  # fmt: skip
        return float(np.median(ratios))


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_preset(name: str, rounds: int, epochs: int, full_fit: bool) -> dict[str, Any]:
    """Ours against the reference for one preset, in this process."""
    import keras

    from forecaster.models import networks, training
    from forecaster.models.lstm import LSTMForecaster
    from forecaster.models.presets import get_preset

    preset = get_preset(name)
    rss0 = _rss_mib()
    prep = LSTMForecaster(preset, HORIZON)
    prep.preset_ = preset
    t = prep._prepare(load_tsla())
    xt, yt, val = t.x[: t.n_train], t.y[: t.n_train], (t.x[t.val], t.y[t.val])
    n_features, batch = t.x.shape[2], preset.batch_size or t.n_train
    peak_before = matmul_peak()
    ours, ref = networks.build_model(preset, n_features, HORIZON), reference_model(preset, n_features, HORIZON)
    if ours.count_params() != ref.count_params():
        raise SystemExit(f"{name}: reference has {ref.count_params()} parameters, ours {ours.count_params()}")
    timers = {"ours": EpochTimer(), "reference": EpochTimer()}
    train = {
        "ours": lambda: training.fit(ours, xt, yt, val, epochs=epochs, batch_size=preset.batch_size,
                                     patience=epochs, seed=preset.seed, callbacks=[timers["ours"].callback]),
        "reference": lambda: ref.fit(xt, yt, batch_size=batch, epochs=epochs, validation_data=val, shuffle=True,
                                     verbose=0, callbacks=[timers["reference"].callback]),
    }  # fmt: skip
    rss_after = _alternate(train, timers, rounds)
    peak_after = matmul_peak()
    peak = max([*peak_before.values(), *peak_after.values()])
    flops_epoch = forward_flops(preset, n_features, HORIZON) * (3 * t.n_train + len(val[0]))
    out: dict[str, Any] = {
        "preset": name, "n_train": int(t.n_train), "n_val": int(len(val[0])), "batch_size": batch,
        "steps_per_epoch": training.steps_per_epoch(t.n_train, preset.batch_size), "params": ours.count_params(),
        "epochs_per_round": epochs, "rounds": rounds, "train_flops_per_epoch": flops_epoch,
        "matmul_peak_gflops": peak, "matmul_peak_runs": {"before": peak_before, "after": peak_after},
        "rss_mib": {"start": rss0, "after_first_ours": rss_after["ours"],
                    "after_first_reference": rss_after["reference"], "peak": _rss_mib()},
    }  # fmt: skip
    for path, timer in timers.items():
        sec = float(np.median(timer.steady()))
        gflops = flops_epoch / sec / 1e9
        out[path] = {
            "epoch_s": round(sec, 4), "samples_per_s": round(t.n_train / sec, 1),
            "gflops": round(gflops, 2), "pct_of_peak": round(100 * timer.efficiency(flops_epoch), 1),
            "pct_of_best_peak": round(100 * gflops / peak, 1), "matmul_probes": timer.probes,
            "first_epoch_s": round(timer.calls[0][0], 3), "epoch_samples_s": [round(s, 4) for s in timer.steady()],
        }  # fmt: skip
    out["ratio"] = round(out["reference"]["epoch_s"] / out["ours"]["epoch_s"], 2)
    if full_fit:
        out["full_fit"] = _full_fits(preset, xt, yt, val, n_features)
    out["cudnn"] = cudnn_check(ours, xt[:batch], yt[:batch])
    out["backend"], out["keras"] = keras.backend.backend(), keras.__version__
    return out


def _alternate(train: dict[str, Callable[[], object]], timers: dict[str, EpochTimer], rounds: int) -> dict[str, float]:
    """``rounds`` x (ours, reference), each call between two matmul probes; returns RSS after each path's first."""
    probe = _matmul_runner(_backend(), 2048)
    reps = 8

    def rate() -> float:
        t0 = time.perf_counter()
        probe(reps)
        return 2 * 2048**3 * reps / (time.perf_counter() - t0) / 1e9

    probe(1)
    rss_after: dict[str, float] = {}
    for _ in range(rounds):
        for path, call in train.items():
            before = rate()
            call()
            timers[path].probes.append(round(max(before, rate()), 1))
            rss_after.setdefault(path, _rss_mib())
    return rss_after


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _full_fits(preset, xt, yt, val, n_features: int) -> dict[str, Any]:
    """One whole fit per path from a fresh model: the preset's epochs and early stopping, tracing included."""
    import keras

    from forecaster.models import networks, training

    out = {}
    for path in ("ours", "reference"):
        t0 = time.perf_counter()
        if path == "ours":
            model = networks.build_model(preset, n_features, HORIZON)
            hist = training.fit(model, xt, yt, val, epochs=preset.epochs, batch_size=preset.batch_size,
                                patience=preset.patience, seed=preset.seed)  # fmt: skip
        else:
            model = reference_model(preset, n_features, HORIZON)
            stop = keras.callbacks.EarlyStopping("val_loss", patience=preset.patience, restore_best_weights=True)
            hist = model.fit(xt, yt, batch_size=preset.batch_size or len(xt), epochs=preset.epochs,
                             validation_data=val, shuffle=True, verbose=0, callbacks=[stop]).history  # fmt: skip
        sec = time.perf_counter() - t0
        out[path] = {"seconds": round(sec, 2), "epochs": len(hist["loss"]), "best_val_loss": min(hist["val_loss"])}
    return out


def cudnn_check(model, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Whether the model's LSTM layers can use, and on this machine do use, the fused cuDNN kernel.

    ``eligible`` reads the layer configs (tanh, sigmoid, no recurrent dropout, not unrolled, bias). ``used`` trains
    one step of a copy whose LSTMs say ``use_cudnn=True``: Keras raises when cuDNN is not used. ``None`` without
    a GPU.
    """
    import keras

    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    cfgs = [layer.get_config() for layer in lstms]
    eligible = all(
        c["activation"] == "tanh" and c["recurrent_activation"] == "sigmoid" and not c["recurrent_dropout"]
        and not c["unroll"] and c["use_bias"] for c in cfgs
    )  # fmt: skip
    out: dict[str, Any] = {"eligible": eligible, "gpu": _gpu_name(), "used": None}
    if out["gpu"] is None:
        return out
    forced = keras.Sequential(
        [keras.Input(model.inputs[0].shape[1:])]
        + [type(layer).from_config({**layer.get_config(), "use_cudnn": True})
           if isinstance(layer, keras.layers.LSTM) else type(layer).from_config(layer.get_config())
           for layer in model.layers]
    )  # fmt: skip
    forced.compile(optimizer="adam", loss="mse")
    try:
        forced.fit(x, y, epochs=1, verbose=0)
        out["used"] = True
    except ValueError as exc:
        out.update(used=False, error=str(exc)[:200])
    return out


def _gpu_name() -> str | None:
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return gpus[0].name if gpus else None
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind) if jax.default_backend() == "gpu" else None
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def table(results: dict[str, Any], peak: float) -> str:
    """A Markdown table: one row per preset."""
    head = ["preset", "samples", "batch", "ours (samples/s)", "reference (samples/s)", "ours/ref",
            "ours GFLOP/s", "% of matmul peak", f"% of best peak ({peak:.0f})", "peak RSS (MiB)",
            "full fit ours / ref (s, epochs)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        ff = r.get("full_fit")
        fit = f"{ff['ours']['seconds']:.1f} ({ff['ours']['epochs']}) / {ff['reference']['seconds']:.1f} " \
              f"({ff['reference']['epochs']})" if ff else "–"  # fmt: skip
        lines.append(
            f"| {name} | {r['n_train']} | {r['batch_size']} | {r['ours']['samples_per_s']:,.0f} | "
            f"{r['reference']['samples_per_s']:,.0f} | {r['ratio']:.2f}x | {r['ours']['gflops']:.1f} | "
            f"{r['ours']['pct_of_peak']:.0f}% | {100 * r['ours']['gflops'] / peak:.0f}% | {r['rss_mib']['peak']:.0f} | "
            f"{fit} |"
        )
    return "\n".join(lines)


def _child(args: argparse.Namespace) -> None:
    """Run one preset and print its JSON on the last line of stdout."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run_preset(args.child, args.rounds, args.epochs or EPOCHS.get(args.child, 4), args.child in args.full)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per path (the first is warm-up)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per round (default: per preset)")
    parser.add_argument("--full", nargs="*", default=list(FULL_FIT), help="presets that also get a full timed fit")
    parser.add_argument("--name", default="training")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    results, t0 = {}, time.perf_counter()
    for name in args.presets:
        cmd = [sys.executable, __file__, "--child", name, "--rounds", str(args.rounds), "--full", *args.full]
        cmd += ["--epochs", str(args.epochs)] if args.epochs else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name}: ours {r['ours']['samples_per_s']:,.0f} samples/s, reference "
              f"{r['reference']['samples_per_s']:,.0f} ({r['ratio']:.2f}x)", flush=True)  # fmt: skip
    peak = max(r["matmul_peak_gflops"] for r in results.values())
    text = table(results, peak)
    print(f"\n{text}")
    first = next(iter(results.values()))
    device = first["cudnn"]["gpu"] or f"CPU ({os.cpu_count()} cores)"
    path = write_json(args.name, {"device": device, "backend": first["backend"], "keras": first["keras"],
                                  "matmul_peak_gflops": peak,
                                  "load_average": os.getloadavg(), "seconds": round(time.perf_counter() - t0, 1),
                                  "results": results, "table_markdown": text})  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
