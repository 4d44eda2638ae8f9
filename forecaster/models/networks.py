"""Keras model builders for the presets, and the atomic on-disk artefact bundle.

A bundle is one folder: ``model.keras`` + ``state.joblib`` (scalers, recent prices, residuals) +
``metadata.json`` (preset, features, spans, history). It is written to a temporary sibling folder and
renamed into place, so a killed process never leaves half a bundle, and its sha256 covers every file.

Its bytes form (:func:`bundle_to_bytes`) is a deterministic, uncompressed tar of the folder: the same files give
the same bytes, so the sha256 of the archive identifies a bundle wherever it is unpacked (the database stores
the archive; :mod:`forecaster.data.cache` keeps unpacked copies keyed by that sha256). A newly trained model is packed
straight into that form in memory (:func:`bundle_bytes`, :func:`pack_model`): no folder of ours exists while a
run that may be killed is packing it.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import random
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib

from forecaster.errors import ForecasterError
from forecaster.models.conformal import QUANTILE_LEVELS
from forecaster.models.presets import Preset

MODEL_FILE, STATE_FILE, META_FILE = "model.keras", "state.joblib", "metadata.json"
BUNDLE_FILES = (MODEL_FILE, STATE_FILE, META_FILE)


class ArtifactError(ForecasterError):
    """A model bundle is missing, incomplete or does not match its recorded sha256."""


def build_model(preset: Preset, n_features: int, horizon: int):  # -> keras.Model
    """The preset's network: stacked LSTMs, optional dense head, a linear ``Dense(horizon)`` output.

    With ``preset.interval == "head"`` the output is ``Dense(2 * horizon)``: the point targets, then a second head
    of ``horizon`` log-scale forecasts (``log |h-day log return|``) trained jointly on the same recurrent state.
    With ``"quantile"`` it is ``Dense(5 * horizon)``: the points, then per horizon the raw outputs that
    :func:`monotone_quantiles` turns into the :data:`QUANTILE_LEVELS` quantiles, trained with
    :func:`quantile_head_loss`. Weights are seeded from ``preset.seed`` so that two builds are identical, in any
    process and thread.
    """
    import keras
    from keras import layers

    with private_keras_seeds(preset.seed):
        model = keras.Sequential(name=f"lstm_{preset.name}")
        model.add(keras.Input((preset.window, n_features)))
        for i, units in enumerate(preset.lstm_units):
            last = i == len(preset.lstm_units) - 1
            model.add(layers.LSTM(units, activation=preset.activation, return_sequences=not last))
        for units in preset.dense_units:
            model.add(layers.Dense(units, activation="relu"))
        if preset.dropout:
            model.add(layers.Dropout(preset.dropout))
        if preset.batch_norm:
            model.add(layers.BatchNormalization())
        model.add(layers.Dense(horizon * OUTPUTS_PER_HORIZON.get(preset.interval, 1)))
        optimizer = keras.optimizers.Adam(preset.learning_rate)
        if preset.interval == "quantile":
            model.compile(optimizer=optimizer, loss=quantile_head_loss, metrics=[point_mae])
        else:
            model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    return model


OUTPUTS_PER_HORIZON = {"head": 2, "quantile": 1 + len(QUANTILE_LEVELS)}
PINBALL_WEIGHT = 8.0  # at the optimum for a standard normal target the mean pinball loss of the four quantiles is
#                       0.117 against an MSE of 1: so weighted, the two heads count about alike


def monotone_quantiles(raw: Any, horizon: int) -> Any:
    """The quantile head's raw outputs ``(n, 4 * horizon)`` as ascending quantiles ``(n, horizon, 4)``.

    Per horizon the first output is the lowest quantile and each next one adds ``softplus`` of its output, so the
    quantiles never cross. Keras ops: used by the loss on tensors and by the forecaster on NumPy arrays.
    """
    from keras import ops

    r = ops.reshape(raw, (-1, horizon, len(QUANTILE_LEVELS)))
    first = r[..., :1]
    return ops.concatenate([first, first + ops.cumsum(ops.softplus(r[..., 1:]), axis=-1)], axis=-1)


def pinball(y: Any, quantiles: Any) -> Any:
    """Mean pinball loss of ``quantiles`` ``(..., 4)`` (at :data:`QUANTILE_LEVELS`) for targets ``y`` ``(...)``."""
    from keras import ops

    taus = ops.convert_to_tensor(QUANTILE_LEVELS, dtype=quantiles.dtype)
    diff = ops.expand_dims(y, -1) - quantiles
    return ops.mean(ops.maximum(taus * diff, (taus - 1.0) * diff))


def quantile_head_loss(y_true: Any, y_pred: Any) -> Any:
    """Loss of the quantile head: MSE of the ``H`` points plus :data:`PINBALL_WEIGHT` times the mean pinball loss.

    ``y_true`` is ``(n, 2H)``: the point targets, then the normalised h-day log returns; ``y_pred`` is ``(n, 5H)``.
    """
    from keras import ops

    h = y_true.shape[-1] // 2
    mse = ops.mean(ops.square(y_true[:, :h] - y_pred[:, :h]))
    return mse + PINBALL_WEIGHT * pinball(y_true[:, h:], monotone_quantiles(y_pred[:, h:], h))


def point_mae(y_true: Any, y_pred: Any) -> Any:
    """Mean absolute error of the points (the first ``H`` columns) of a quantile head's output."""
    from keras import ops

    h = y_true.shape[-1] // 2
    return ops.mean(ops.abs(y_true[:, :h] - y_pred[:, :h]))


CUSTOM_OBJECTS = {"quantile_head_loss": quantile_head_loss, "point_mae": point_mae}  # what a bundle may name


_SEEDS = threading.RLock()  # one private generator at a time: blocks in two threads would swap each other's


@contextmanager
def private_keras_seeds(seed: int) -> Iterator[None]:
    """Seed Keras, and let it draw its default layer seeds from a private generator while the block runs.

    Keras draws the seed of every initializer and ``SeedGenerator`` from Python's process-global ``random``, which
    other threads of the same process draw from too (a Dask worker's event loop, Prefect): the weights of a model
    built on a worker would depend on their timing. ``random.Random(seed)`` yields exactly the draws that
    ``random.seed(seed)`` does in a quiet process, so the models are the ones a lone process builds.
    """
    import keras

    with _SEEDS:
        keras.utils.set_random_seed(seed)
        with private_default_seeds(seed):
            yield


@contextmanager
def private_default_seeds(seed: int) -> Iterator[None]:
    """Keras' default layer seeds drawn from ``random.Random(seed)`` while the block runs; global seeds untouched.

    Blocks in several threads run one at a time, so none draws from another's generator or restores it late."""
    try:
        from keras.src.random import seed_generator  # where Keras 3 draws default seeds (python_random.randint)
    except ImportError:  # pragma: no cover - another Keras layout: seeded globally only
        yield
        return
    with _SEEDS:
        shared = seed_generator.python_random
        seed_generator.python_random = random.Random(seed)  # type: ignore[assignment]
        try:
            yield
        finally:
            seed_generator.python_random = shared


def directory_sha256(directory: Path) -> str:
    """sha256 over the names and bytes of every file in a bundle folder (sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def write_bundle(directory: Path, model: Any, state: dict[str, Any], metadata: dict[str, Any]) -> str:
    """Atomically write a bundle to ``directory`` (which must not exist yet); returns its sha256."""
    return directory_sha256(bundle_from_bytes(bundle_bytes(model, state, metadata), Path(directory)))


@contextmanager
def _immutable_folder(directory: Path) -> Iterator[Path]:
    """A temporary sibling of ``directory`` to fill; renamed into place when the block ends, removed if it raises."""
    if directory.exists():
        raise ArtifactError(f"model bundle {directory} already exists; bundles are immutable")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    held = os.open(tmp, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # while it is held, a sweep leaves the folder alone (see filling)
    try:
        yield tmp
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(held)


def filling(folder: Path) -> bool:
    """True while a live process fills ``folder``, a temporary folder of :func:`write_bundle` or
    :func:`bundle_from_bytes`: it holds an ``fcntl`` lock on the folder, which dies with the process."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_bundle(directory: Path, expected_sha256: str | None = None) -> tuple[Any, dict, dict]:
    """Load ``(keras model, state, metadata)``; raises ArtifactError if missing, partial or tampered with."""
    import keras

    directory = Path(directory)
    missing = [f for f in BUNDLE_FILES if not (directory / f).is_file()]
    if missing:
        raise ArtifactError(f"model bundle {directory} is missing {', '.join(missing)}")
    if expected_sha256 is not None and (actual := directory_sha256(directory)) != expected_sha256:
        raise ArtifactError(
            f"model bundle {directory} is corrupt: sha256 {actual[:12]} != recorded {expected_sha256[:12]}"
        )
    try:
        metadata = json.loads((directory / META_FILE).read_text())
        # Seeded like a build, so that what the model does next (a fine-tune's dropout, say) does not depend on
        # what the process ran before or on other threads, whichever worker loads it.
        with private_keras_seeds(int(metadata.get("preset", {}).get("seed", 0))):
            model = keras.saving.load_model(directory / MODEL_FILE, compile=True, custom_objects=CUSTOM_OBJECTS)
        state = joblib.load(directory / STATE_FILE)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a corrupt bundle
        raise ArtifactError(f"model bundle {directory} could not be read: {type(exc).__name__}: {exc}") from exc
    return model, state, metadata


def bundle_to_bytes(directory: Path) -> bytes:
    """The bundle folder as one deterministic tar archive (sorted names, no timestamps or owners)."""
    directory = Path(directory)
    missing = [f for f in BUNDLE_FILES if not (directory / f).is_file()]
    if missing:
        raise ArtifactError(f"model bundle {directory} is missing {', '.join(missing)}")
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return _archive({path.relative_to(directory).as_posix(): path.read_bytes() for path in files})


def bundle_bytes(model: Any, state: dict[str, Any], metadata: dict[str, Any]) -> bytes:
    """The archive of a bundle built in memory: the bytes :func:`bundle_to_bytes` gives for the folder that
    :func:`write_bundle` writes, without writing any file of ours (a killed process leaves nothing behind)."""
    from keras.src.saving import saving_lib  # the file-object form of keras.saving.save_model

    keras_file, state_file = io.BytesIO(), io.BytesIO()
    saving_lib.save_model(model, keras_file)
    joblib.dump(state, state_file)
    meta = json.dumps(metadata, indent=2, sort_keys=True, default=str).encode()
    return _archive({MODEL_FILE: keras_file.getvalue(), STATE_FILE: state_file.getvalue(), META_FILE: meta})


def _archive(members: dict[str, bytes]) -> bytes:
    """A deterministic, uncompressed tar of ``members`` (name -> bytes): sorted names, no timestamps or owners."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(members[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(members[name]))
    return buffer.getvalue()


def bytes_sha256(data: bytes) -> str:
    """The sha256 of an archive: the identity of a bundle in the registry and in the cache."""
    return hashlib.sha256(data).hexdigest()


def bundle_from_bytes(data: bytes, directory: Path) -> Path:
    """Unpack an archive made by :func:`bundle_to_bytes` into ``directory`` (which must not exist), atomically."""
    directory = Path(directory)
    with _immutable_folder(directory) as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ArtifactError(f"model archive for {directory.name} could not be unpacked: {exc}") from exc
        missing = [f for f in BUNDLE_FILES if not (tmp / f).is_file()]
        if missing:
            raise ArtifactError(f"model archive for {directory.name} is missing {', '.join(missing)}")
    return directory


def pack_model(model: Any) -> tuple[bytes, str]:
    """A fitted forecaster (anything with ``to_bytes()``) as ``(archive bytes, sha256)``, built in memory."""
    data = model.to_bytes()
    return data, bytes_sha256(data)
