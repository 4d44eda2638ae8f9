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

Compiled functions are cached per model (weakly), so fine-tuning a model and predicting with it trace nothing new.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

logger = logging.getLogger("forecaster.models.training")

# Per-model compiled functions; an entry goes when its model is garbage-collected.
_EPOCH_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_EVAL_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PREDICT_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
        callbacks: extra Keras callbacks (e.g. a timer), called at train and epoch boundaries only.

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
    """The epoch loop of ``keras.Model.fit`` (callbacks, metrics, early stopping), one compiled call per epoch."""
    import keras
    import tensorflow as tf

    run_epoch, evaluate = epoch_function(model, batch_size), eval_function(model)
    x_t, y_t = tf.constant(x), tf.constant(y)
    val = None if validation is None else (tf.constant(validation[0]), tf.constant(validation[1]))
    rng = np.random.default_rng(seed)
    cbs = keras.callbacks.CallbackList(callbacks, model=model, add_history=False, epochs=epochs, verbose=0)
    history: dict[str, list[float]] = {}
    model.stop_training = False
    cbs.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(epochs):
        model.reset_metrics()
        cbs.on_epoch_begin(epoch)
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        logs = _floats(run_epoch(x_t, y_t, tf.constant(order, dtype=tf.int32)))
        if val is not None:
            model.reset_metrics()
            logs |= {f"val_{k}": v for k, v in _floats(evaluate(*val)).items()}
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    cbs.on_train_end(logs)
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
    so many models' closures (a walk-forward refitting every day) would look like one function retracing.
    The model is held weakly, so the cache never keeps a model alive.
    """

    def __init__(self, model: Any, batch_size: int) -> None:
        self._model, self._batch = weakref.ref(model), batch_size

    def __call__(self, x, y, order):
        import tensorflow as tf

        model = self._model()
        for start in tf.range(0, tf.shape(order)[0], self._batch):
            idx = order[start : start + self._batch]
            model.train_step((tf.gather(x, idx), tf.gather(y, idx)))
        return model.get_metrics_result()


class _Evaluate:
    """``model.test_step`` on the whole slice in one batch; then the metrics (held weakly, like :class:`_Epoch`)."""

    def __init__(self, model: Any) -> None:
        self._model = weakref.ref(model)

    def __call__(self, x, y):
        model = self._model()
        model.test_step((x, y))
        return model.get_metrics_result()


class _Infer:
    """``model(x, training=False)`` (held weakly, like :class:`_Epoch`)."""

    def __init__(self, model: Any) -> None:
        self._model = weakref.ref(model)

    def __call__(self, x):
        return self._model()(x, training=False)


def epoch_function(model: Any, batch_size: int) -> Callable:
    """``run(x, y, order) -> metrics``: one epoch in one compiled call, cached per (model, batch size).

    It retraces at most once more, for a new number of samples (``reduce_retracing``).
    """
    import tensorflow as tf

    cache = _EPOCH_FUNCTIONS.setdefault(model, {})
    if batch_size not in cache:
        cache[batch_size] = tf.function(_Epoch(model, batch_size), reduce_retracing=True)
    return cache[batch_size]


def eval_function(model: Any) -> Callable:
    """``evaluate(x, y) -> metrics``: the validation loss in one compiled call, cached per model."""
    import tensorflow as tf

    if model not in _EVAL_FUNCTIONS:
        _EVAL_FUNCTIONS[model] = tf.function(_Evaluate(model), reduce_retracing=True)
    return _EVAL_FUNCTIONS[model]


def predict_function(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x) -> np.ndarray``: ``model(x, training=False)`` traced once for any number of samples (cached).

    The same numbers as ``model.predict(x)``, without its per-call set-up: this is what makes one daily forecast
    take milliseconds. On other Keras backends it calls the model directly.
    """
    import keras

    if model in _PREDICT_FUNCTIONS:
        return _PREDICT_FUNCTIONS[model]
    infer = _Infer(model)
    if keras.backend.backend() != "tensorflow":

        def call(x: np.ndarray) -> np.ndarray:
            return keras.ops.convert_to_numpy(infer(x))

        _PREDICT_FUNCTIONS[model] = call
        return call
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
    traced = tf.function(infer, input_signature=[spec])

    def predict(x: np.ndarray) -> np.ndarray:
        return traced(tf.constant(x, dtype=tf.float32)).numpy()

    _PREDICT_FUNCTIONS[model] = predict
    return predict


def steps_per_epoch(n_samples: int, batch_size: int | None) -> int:
    """Optimizer steps in one epoch (the last batch may be partial)."""
    return math.ceil(n_samples / (batch_size or n_samples))


def set_learning_rate(model: Any, learning_rate: float) -> None:
    """Change the optimizer's learning rate in place (used by fine-tuning)."""
    model.optimizer.learning_rate.assign(learning_rate)
