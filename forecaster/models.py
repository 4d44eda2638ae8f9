"""Keras model builders for the presets, and the atomic on-disk artefact bundle.

A bundle is one folder: ``model.keras`` + ``state.joblib`` (scalers, recent prices, residuals) +
``metadata.json`` (preset, features, spans, history). It is written to a temporary sibling folder and
renamed into place, so a killed process never leaves half a bundle, and its sha256 covers every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import joblib

from forecaster.errors import ForecasterError
from forecaster.presets import Preset

MODEL_FILE, STATE_FILE, META_FILE = "model.keras", "state.joblib", "metadata.json"


class ArtifactError(ForecasterError):
    """A model bundle is missing, incomplete or does not match its recorded sha256."""


def build_model(preset: Preset, n_features: int, horizon: int):  # -> keras.Model
    """The preset's network: stacked LSTMs, optional dense head, a linear ``Dense(horizon)`` output.

    With ``preset.interval == "head"`` the output is ``Dense(2 * horizon)``: the point targets, then a second head
    of ``horizon`` log-scale forecasts (``log |h-day log return|``) trained jointly on the same recurrent state.
    Weights are seeded from ``preset.seed`` so that two builds are identical.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(preset.seed)
    model = keras.Sequential(name=f"lstm_{preset.name}")
    model.add(keras.Input((preset.window, n_features)))
    for i, units in enumerate(preset.lstm_units):
        model.add(layers.LSTM(units, activation=preset.activation, return_sequences=i < len(preset.lstm_units) - 1))
    for units in preset.dense_units:
        model.add(layers.Dense(units, activation="relu"))
    if preset.dropout:
        model.add(layers.Dropout(preset.dropout))
    if preset.batch_norm:
        model.add(layers.BatchNormalization())
    model.add(layers.Dense(horizon * (2 if preset.interval == "head" else 1)))
    model.compile(optimizer=keras.optimizers.Adam(preset.learning_rate), loss="mse", metrics=["mae"])
    return model


def directory_sha256(directory: Path) -> str:
    """sha256 over the names and bytes of every file in a bundle folder (sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def write_bundle(directory: Path, model: Any, state: dict[str, Any], metadata: dict[str, Any]) -> str:
    """Atomically write a bundle to ``directory`` (which must not exist yet); returns its sha256."""
    directory = Path(directory)
    if directory.exists():
        raise ArtifactError(f"model bundle {directory} already exists; bundles are immutable")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.save(tmp / MODEL_FILE)
        joblib.dump(state, tmp / STATE_FILE)
        (tmp / META_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))
        sha = directory_sha256(tmp)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sha


def read_bundle(directory: Path, expected_sha256: str | None = None) -> tuple[Any, dict, dict]:
    """Load ``(keras model, state, metadata)``; raises ArtifactError if missing, partial or tampered with."""
    import keras

    directory = Path(directory)
    missing = [f for f in (MODEL_FILE, STATE_FILE, META_FILE) if not (directory / f).is_file()]
    if missing:
        raise ArtifactError(f"model bundle {directory} is missing {', '.join(missing)}")
    if expected_sha256 is not None and (actual := directory_sha256(directory)) != expected_sha256:
        raise ArtifactError(
            f"model bundle {directory} is corrupt: sha256 {actual[:12]} != recorded {expected_sha256[:12]}"
        )
    try:
        model = keras.saving.load_model(directory / MODEL_FILE, compile=True)
        state = joblib.load(directory / STATE_FILE)
        metadata = json.loads((directory / META_FILE).read_text())
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a corrupt bundle
        raise ArtifactError(f"model bundle {directory} could not be read: {type(exc).__name__}: {exc}") from exc
    return model, state, metadata
