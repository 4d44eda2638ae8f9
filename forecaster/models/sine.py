"""The seed002 experiment, reproduced: an LSTM learns ``sin(t)`` (a sanity check that training works).

Steps, as in the write-up: normalise, split 80/20 chronologically, train (``validation_split=0.1`` of the
training part, i.e. its last 10%), predict, denormalise, and compute MSE/RMSE on the test part.
The MinMax scaler is fitted on the training part only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import MinMaxScaler

from forecaster.evaluation import metrics
from forecaster.models import networks, training
from forecaster.models.features import windows
from forecaster.models.presets import get_preset


@dataclass
class SineResult:
    """Per-epoch losses, test-set actual and predicted values, and the test errors (original units)."""

    loss: list[float]
    val_loss: list[float]
    actual: np.ndarray
    predicted: np.ndarray
    test_mse: float
    test_rmse: float


def sine_series(n: int = 1000, stop: float = 100.0) -> np.ndarray:
    """``sin(t)`` for ``t = linspace(0, stop, n)``, as in the write-up."""
    return np.sin(np.linspace(0.0, stop, n))


def run_sine(epochs: int = 20, *, seed: int | None = None) -> SineResult:
    """Train the seed002 preset on the sine wave and score it on the last 20% of windows."""
    preset = get_preset("seed002")
    preset = preset.replace(epochs=epochs, patience=epochs, seed=preset.seed if seed is None else seed)
    series = sine_series()
    n_windows = len(series) - preset.window
    n_train = int(n_windows * 0.8)
    scaler = MinMaxScaler().fit(series[: n_train + preset.window, None])
    scaled = scaler.transform(series[:, None]).astype("float32")
    x = windows(scaled[:-1], preset.window)
    y = scaled[preset.window :]
    n_fit = n_train - int(n_train * 0.1)
    model = networks.build_model(preset, n_features=1, horizon=1)
    history = training.fit(
        model, x[:n_fit], y[:n_fit], (x[n_fit:n_train], y[n_fit:n_train]),
        epochs=preset.epochs, batch_size=preset.batch_size, patience=preset.patience, label="sine", seed=preset.seed,
    )  # fmt: skip
    predicted = scaler.inverse_transform(np.asarray(model(x[n_train:], training=False)))[:, 0]
    actual = series[preset.window + n_train :]
    rmse = metrics.rmse(actual, predicted)
    return SineResult(history["loss"], history["val_loss"], actual, predicted, rmse**2, rmse)
