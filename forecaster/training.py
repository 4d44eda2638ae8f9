"""Keras training: fit from scratch with early stopping on the chronologically last slice, and fine-tuning."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

logger = logging.getLogger("forecaster.training")


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
) -> dict[str, list[float]]:
    """Train ``model`` in place; with ``validation``, stop early and restore the best weights.

    Args:
        batch_size: ``None`` trains full-batch (one step per epoch).

    Returns:
        The Keras history (``loss`` and, with validation, ``val_loss`` per epoch).
    """
    import keras

    callbacks: list[Any] = [_epoch_logger(epochs, label)]
    if validation is not None and patience < epochs:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        )
    history = model.fit(
        x,
        y,
        validation_data=validation,
        epochs=epochs,
        batch_size=batch_size or len(x),
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def set_learning_rate(model: Any, learning_rate: float) -> None:
    """Change the optimizer's learning rate in place (used by fine-tuning)."""
    model.optimizer.learning_rate.assign(learning_rate)
