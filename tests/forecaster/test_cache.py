"""The bundle archive (deterministic tar) and the sha256-keyed local cache, on fake bundle folders (no Keras)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forecaster.data.cache import BundleCache
from forecaster.models.networks import BUNDLE_FILES, ArtifactError, bundle_from_bytes, bundle_to_bytes, bytes_sha256


def fake_bundle(folder: Path, payload: bytes = b"weights") -> Path:
    """A bundle-shaped folder: the three files with arbitrary bytes."""
    folder.mkdir(parents=True)
    for name in BUNDLE_FILES:
        (folder / name).write_bytes(name.encode() + payload)
    return folder


def test_archive_is_deterministic_and_round_trips(tmp_path):
    a = bundle_to_bytes(fake_bundle(tmp_path / "a"))
    b_folder = fake_bundle(tmp_path / "b")
    os.utime(b_folder / "model.keras", (1, 1))  # other timestamps, same content
    assert bundle_to_bytes(b_folder) == a
    out = bundle_from_bytes(a, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {p.name: p.read_bytes() for p in b_folder.iterdir()}
    assert bundle_to_bytes(fake_bundle(tmp_path / "c", b"other")) != a


def test_an_incomplete_folder_or_archive_is_refused(tmp_path):
    folder = fake_bundle(tmp_path / "a")
    (folder / "state.joblib").unlink()
    with pytest.raises(ArtifactError, match="missing state.joblib"):
        bundle_to_bytes(folder)
    with pytest.raises(ArtifactError, match="could not be unpacked"):
        bundle_from_bytes(b"not a tar archive", tmp_path / "out")
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["a"], "no partial folder"


class Fetches:
    """A fetch callback that counts its calls."""

    def __init__(self, data: bytes | None) -> None:
        self.data, self.calls = data, 0

    def __call__(self) -> bytes | None:
        self.calls += 1
        return self.data


def test_cache_fills_once_then_serves_verified_folders(tmp_path):
    data = bundle_to_bytes(fake_bundle(tmp_path / "src"))
    sha, fetch, cache = bytes_sha256(data), Fetches(data), BundleCache(tmp_path / "cache")
    folder = cache.get(sha, fetch)
    assert folder == tmp_path / "cache" / sha and cache.get(sha, fetch) == folder
    assert fetch.calls == 1, "the second load is a cache hit"


def test_a_tampered_cache_entry_is_unpacked_again(tmp_path):
    data = bundle_to_bytes(fake_bundle(tmp_path / "src"))
    sha, fetch, cache = bytes_sha256(data), Fetches(data), BundleCache(tmp_path / "cache")
    folder = cache.get(sha, fetch)
    (folder / "model.keras").write_bytes(b"corrupted")
    assert cache.get(sha, fetch) == folder and fetch.calls == 2
    assert bytes_sha256(bundle_to_bytes(folder)) == sha


def test_a_missing_or_mismatching_stored_artefact_is_an_artifact_error(tmp_path):
    data = bundle_to_bytes(fake_bundle(tmp_path / "src"))
    cache = BundleCache(tmp_path / "cache")
    with pytest.raises(ArtifactError, match="pruned or never stored"):
        cache.get(bytes_sha256(data), Fetches(None))
    with pytest.raises(ArtifactError, match="stored artefact is corrupt"):
        cache.get(bytes_sha256(b"something else"), Fetches(data))
    assert not any((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


def test_a_sweep_removes_the_folder_of_a_killed_fill_but_never_one_being_filled(tmp_path):
    from forecaster.models.networks import _immutable_folder  # the temporary folder every bundle fill writes in

    data = bundle_to_bytes(fake_bundle(tmp_path / "bundle"))
    root = tmp_path / "cache"
    killed = root / ".0123abcd.killed"  # what a fill killed with SIGKILL leaves: a folder nobody holds
    killed.mkdir(parents=True)
    with _immutable_folder(root / "elsewhere") as live:  # a fill in progress (here: in this process)
        for folder in (killed, live):
            os.utime(folder, (1, 1))  # both far older than any grace period
        BundleCache(root).get(bytes_sha256(data), lambda: data)  # a fill sweeps first
        assert live.is_dir(), "the sweep removed a folder that a live fill was writing"
        assert not killed.exists()
