"""Keras training: fit from scratch with early stopping on the chronologically last slice, and fine-tuning.

On the TensorFlow backend one epoch is **one compiled call**: the training windows are handed to TensorFlow once
per ``fit`` and each epoch passes only a permutation of their indices to a ``tf.function`` that loops over the
batches inside the graph (Keras' own ``train_step``, so the same loss, optimizer and metrics). A plain
``model.fit`` on NumPy arrays goes back to Python for every batch; ``benchmarks/training.py`` measures the
difference. What is learned does not change: every epoch is one pass over all training samples in a fresh
permutation, in batches of ``batch_size`` (the last one partial), and Keras' ``EarlyStopping`` watches the same
validation loss. With ``shuffle=False`` the weights are bit-identical to ``model.fit(..., shuffle=False)``.
Permutations come from ``numpy.random.default_rng(seed)``, so a fit is reproducible.

XLA (``jit_compile``) is not used: on the 2-core CPU it roughly halves the steady epoch of the small presets, but
compiling costs about 3 s per model and per batch shape, more than a typical early-stopped fit or a fine-tune
saves, and it made seed000's large matmuls slower (README "Performance").

Compiled functions belong to an :class:`Engine` per architecture, not to a model: a new or loaded model of a known
architecture (a walk-forward refit, each day's champion) traces nothing new; its state is assigned into the engine.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

logger = logging.getLogger("forecaster.models.training")


def _epoch_logger(total: int, label: str):
    import keras

    class EpochLogger(keras.callbacks.Callback):
        """One log line per epoch: loss, validation loss and seconds."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            val = f" val_loss={logs['val_loss']:.4g}" if "val_loss" in logs else ""
            seconds = time.perf_counter() - self._t0
            logger.info(
                "%s epoch %d/%d loss=%.4g%s (%.2fs)",
                label,
                epoch + 1,
                total,
                logs.get("loss", np.nan),
                val,
                seconds,
            )

    return EpochLogger()


def fit(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
    *,
    epochs: int,
    batch_size: int | None,
    patience: int,
    label: str = "fit",
    seed: int = 0,
    shuffle: bool = True,
    callbacks: list[Any] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` in place; with ``validation``, stop early and restore the best weights.

    Args:
        batch_size: ``None`` trains full-batch (one step per epoch).
        seed: seeds the per-epoch permutations of the training samples.
        shuffle: ``False`` keeps the samples in order (used by tests to compare with ``model.fit``).
        callbacks: extra Keras callbacks (e.g. a timer), called at train and epoch boundaries only. On TensorFlow
            their ``model`` is the architecture's :class:`Engine` model (``model``'s state is assigned back after
            the last epoch), so a callback must not keep it.

    If training raises, ``model`` keeps the state it had before the call.

    Returns:
        The Keras-style history: ``loss``, ``mae`` and, with validation, ``val_loss``, ``val_mae`` per epoch.
    """
    import keras

    every: list[Any] = [_epoch_logger(epochs, label), *(callbacks or [])]
    if validation is not None and patience < epochs:
        every.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True))
    batch = batch_size or len(x)
    if keras.backend.backend() != "tensorflow":
        return _fit_with_keras(model, x, y, validation, epochs=epochs, batch_size=batch, shuffle=shuffle,
                               callbacks=every)  # fmt: skip
    return _fit_compiled_epochs(model, x, y, validation, epochs=epochs, batch_size=batch, shuffle=shuffle,
                                callbacks=every, seed=seed)  # fmt: skip


def _fit_compiled_epochs(
    model: Any, x: np.ndarray, y: np.ndarray, validation: tuple[np.ndarray, np.ndarray] | None, *,
    epochs: int, batch_size: int, shuffle: bool, callbacks: list[Any], seed: int,
) -> dict[str, list[float]]:  # fmt: skip
    """The epoch loop of ``keras.Model.fit`` (callbacks, metrics, early stopping), one compiled call per epoch.

    It trains the engine of ``model``'s architecture, into which ``model``'s weights and optimizer state are
    assigned first and from which the result is assigned back.
    """
    import keras
    import tensorflow as tf

    x_t, y_t = tf.constant(x), tf.constant(y)
    val = None if validation is None else (tf.constant(validation[0]), tf.constant(validation[1]))
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {}
    with _engine(model) as engine:
        engine.take(model, optimizer=True)
        engine.build_compiled(x[:1], y[:1])
        net, run_epoch = engine.model, engine.epoch(batch_size)
        cbs = keras.callbacks.CallbackList(callbacks, model=net, add_history=False, epochs=epochs, verbose=0)
        net.stop_training = False
        cbs.on_train_begin()
        logs: dict[str, float] = {}
        for epoch in range(epochs):
            net.reset_metrics()
            cbs.on_epoch_begin(epoch)
            order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
            logs = _floats(run_epoch(x_t, y_t, tf.constant(order, dtype=tf.int32)))
            if val is not None:
                net.reset_metrics()
                logs |= {f"val_{k}": v for k, v in _floats(engine.evaluate(*val)).items()}
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            cbs.on_epoch_end(epoch, logs)
            if net.stop_training:
                break
        net.optimizer.finalize_variable_values(net.trainable_weights)
        cbs.on_train_end(logs)
        engine.give(model)
    return history


def _fit_with_keras(model: Any, x, y, validation, *, epochs: int, batch_size: int, shuffle: bool, callbacks):
    """Plain ``model.fit`` on arrays: the path for Keras backends other than TensorFlow."""
    history = model.fit(x, y, validation_data=validation, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                        verbose=0, callbacks=callbacks)  # fmt: skip
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _floats(logs: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in logs.items()}


class _Epoch:
    """One epoch of ``model.train_step`` over ``order`` in batches; then the epoch's metrics.

    A callable object rather than a closure: TensorFlow's frequent-retracing warning keys functions by their code,
    so several engines' closures would look like one function retracing.
    """

    def __init__(self, model: Any, batch_size: int) -> None:
        self._model, self._batch = model, batch_size

    def __call__(self, x, y, order):
        import tensorflow as tf

        for start in tf.range(0, tf.shape(order)[0], self._batch):
            idx = order[start : start + self._batch]
            self._model.train_step((tf.gather(x, idx), tf.gather(y, idx)))
        return self._model.get_metrics_result()


class _Evaluate:
    """``model.test_step`` on the whole slice in one batch; then the metrics."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __call__(self, x, y):
        self._model.test_step((x, y))
        return self._model.get_metrics_result()


class _Infer:
    """``model(x, training=False)``."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __call__(self, x):
        return self._model(x, training=False)


class Engine:
    """A private, built copy of one architecture and its compiled functions (an epoch per batch size, the
    validation loss, inference), traced once and reused by every model of that architecture.

    Tracing a new Keras model's functions costs far more CPU than a small model's training: about 97 % of a
    ``smoke`` fit, and about 0.5-1 s of a ``default`` fit on TSLA (docs/performance.md). A walk-forward backtest,
    a catch-up or a worker builds or loads a new model for nearly every fit, so a model does not train in its own
    variables: its weights, non-trainable state (seed generators, batch-norm statistics) and optimizer state are
    assigned into the engine, which runs the step, and the result is assigned back. The arithmetic is the same
    as on the model itself, so the weights are bit-identical (``tests/forecaster/test_training.py``).
    """

    def __init__(self, model: Any) -> None:
        import tensorflow as tf

        self.model = _rebuilt(model)
        self._epochs: dict[int, Callable] = {}
        self.evaluate = tf.function(_Evaluate(self.model), reduce_retracing=True)
        spec = tf.TensorSpec((None, *self.model.inputs[0].shape[1:]), tf.float32)
        self.infer = tf.function(_Infer(self.model), input_signature=[spec])

    def epoch(self, batch_size: int) -> Callable:
        """``run(x, y, order) -> metrics``: one epoch in one compiled call; it retraces at most once more, for a
        new number of samples (``reduce_retracing``)."""
        import tensorflow as tf

        if batch_size not in self._epochs:
            self._epochs[batch_size] = tf.function(_Epoch(self.model, batch_size), reduce_retracing=True)
        return self._epochs[batch_size]

    def build_compiled(self, x: np.ndarray, y: np.ndarray) -> None:
        """Make the compiled loss's and metrics' variables from a batch's shapes (``x``, ``y``), as
        ``keras.Model.fit`` does before its first step. Made inside the first traced epoch instead, they make
        TensorFlow trace it twice (docs/performance.md)."""
        build = getattr(self.model, "_symbolic_build", None)  # private to Keras: without it, only slower
        if build is not None:  # Keras' own check makes it a no-op once everything is built
            build(data_batch=(x, y))

    def take(self, model: Any, *, optimizer: bool) -> None:
        """Assign ``model``'s variables (and, with ``optimizer``, its optimizer's) into the engine."""
        _assign(_state(model, optimizer), _state(self.model, optimizer))

    def give(self, model: Any) -> None:
        """Assign the engine's variables and optimizer state back into ``model``."""
        _assign(_state(self.model, True), _state(model, True))


def _state(model: Any, optimizer: bool) -> list[Any]:
    if not optimizer:
        return list(model.variables)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return [*model.variables, *model.optimizer.variables]


def _assign(source: list[Any], target: list[Any]) -> None:
    if [tuple(v.shape) for v in source] != [tuple(v.shape) for v in target]:  # a wrong architecture key
        raise RuntimeError("a model and its training engine hold variables of different shapes")
    for src, dst in zip(source, target, strict=True):
        dst.assign(src)


def _rebuilt(model: Any) -> Any:
    """A new, built and compiled model of ``model``'s architecture and compile settings (its own variables).

    Its initial weights are drawn from a private generator, so building it leaves Keras' global seeds alone.
    """
    import keras

    from forecaster.models.networks import CUSTOM_OBJECTS, private_default_seeds

    with private_default_seeds(0), keras.saving.custom_object_scope(CUSTOM_OBJECTS):
        twin = keras.models.clone_model(model)
        twin.compile_from_config(model.get_compile_config())
    twin.optimizer.build(twin.trainable_variables)
    return twin


# Free engines by architecture key: a model checks one out for a fit or a forecast (a new one is built when all
# of its architecture's are busy, so threads never share one), and returns it afterwards; at most
# MAX_FREE_ENGINES per architecture are kept.
MAX_FREE_ENGINES = 4
_ENGINES: dict[str, list[Engine]] = {}
_ENGINES_LOCK = threading.Lock()
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (compile fingerprint, key)


def architecture_key(model: Any) -> str:
    """What decides a model's compiled functions: its layers and compile settings, without the names of layers,
    model and optimizer (every build draws new ones) or the learning rate (a variable, assigned like the weights).
    A dtype policy's name (``float32``, ``mixed_float16``) is kept. Models with the same key share an
    :class:`Engine`."""
    import keras

    # compile() makes a new optimizer and compile config; freezing a layer changes what trains: either recomputes it
    fingerprint = (id(model.optimizer), id(getattr(model, "_compile_config", None)),
                   tuple(layer.trainable for layer in model.layers))  # fmt: skip
    with _ENGINES_LOCK:
        cached = _KEYS.get(model)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    config = keras.saving.serialize_keras_object(model)
    key = json.dumps(_without_names(config), sort_keys=True, default=str)
    with _ENGINES_LOCK:
        _KEYS[model] = (fingerprint, key)
    return key


def _without_names(config: Any) -> Any:
    """``config`` without ``name`` entries (except inside a ``dtype`` policy) and without a constant learning rate
    (a schedule stays: it is traced into the step)."""
    if isinstance(config, dict):
        return {
            k: v if k == "dtype" else _without_names(v)
            for k, v in config.items()
            if k != "name" and not (k == "learning_rate" and isinstance(v, int | float))
        }
    if isinstance(config, list | tuple):
        return [_without_names(v) for v in config]
    return config


@contextmanager
def _engine(model: Any) -> Iterator[Engine]:
    """A free engine for ``model``'s architecture, held by the caller until the block ends."""
    key = architecture_key(model)
    with _ENGINES_LOCK:
        free = _ENGINES.setdefault(key, [])
        engine = free.pop() if free else None
    if engine is None:
        engine = Engine(model)
    try:
        yield engine
    finally:
        with _ENGINES_LOCK:
            if len(_ENGINES[key]) < MAX_FREE_ENGINES:
                _ENGINES[key].append(engine)


def predict_function(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x) -> np.ndarray``: ``model(x, training=False)`` compiled once per architecture, for any number
    of samples.

    The same numbers as ``model.predict(x)``, without its per-call set-up: this is what makes one daily forecast
    take milliseconds. On other Keras backends it calls the model directly.
    """
    import keras

    if keras.backend.backend() != "tensorflow":

        def call(x: np.ndarray) -> np.ndarray:
            return keras.ops.convert_to_numpy(model(x, training=False))

        return call
    import tensorflow as tf

    def predict(x: np.ndarray) -> np.ndarray:
        with _engine(model) as engine:
            engine.take(model, optimizer=False)
            return engine.infer(tf.constant(x, dtype=tf.float32)).numpy()

    return predict


def steps_per_epoch(n_samples: int, batch_size: int | None) -> int:
    """Optimizer steps in one epoch (the last batch may be partial)."""
    return math.ceil(n_samples / (batch_size or n_samples))


def set_learning_rate(model: Any, learning_rate: float) -> None:
    """Change the optimizer's learning rate in place (used by fine-tuning)."""
    model.optimizer.learning_rate.assign(learning_rate)
