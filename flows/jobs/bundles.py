"""Model artefacts between the database and a worker: pack a trained model for ``add_model_version(artifact=...)``
and load a registered version through the local sha256-keyed cache (filled from the database on first use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from db.repository import Repository
from flows.settings import Settings
from forecaster.data.cache import BundleCache
from forecaster.models.networks import pack_model

__all__ = ["artifact_hint", "cached_bundle", "load_version", "pack_model"]


def artifact_hint(sha256: str) -> str:
    """``model_versions.artifact_path`` of a stored version: its cache folder, relative to any worker's home."""
    return f"cache/{sha256}"


def cached_bundle(repo: Repository, row: Any, settings: Settings | None = None) -> Path:
    """The verified local folder of a registered version's bundle, unpacked from the database when missing.

    Raises:
        ArtifactError: the version has no stored artefact (pruned), or it does not match its sha256.
    """
    cache = BundleCache((settings or Settings()).cache_dir)
    return cache.get(row.artifact_sha256, lambda: repo.artifact_data(row.id))


def load_version(repo: Repository, row: Any, settings: Settings | None = None):  # -> LSTMForecaster
    """Load a registered model version (its ``model_versions`` row) from the cache or the database."""
    from forecaster.models.lstm import LSTMForecaster

    return LSTMForecaster.load(cached_bundle(repo, row, settings))
