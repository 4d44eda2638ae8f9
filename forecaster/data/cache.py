"""A local cache of unpacked model bundles, keyed by the sha256 of their archive.

The database holds every bundle's archive (:func:`forecaster.models.networks.bundle_to_bytes`); a worker unpacks the
ones it
needs into ``<root>/<sha256>/`` on first use. Every load re-verifies the folder against its key, a folder that no
longer matches is unpacked again, and a fill is atomic (unpacked beside its place, then renamed), so the cache is
safe to delete at any time, also while workers run.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from forecaster.models.networks import ArtifactError, bundle_from_bytes, bundle_to_bytes, bytes_sha256, filling

logger = logging.getLogger("forecaster.data.cache")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# a fill locks its temporary folder (forecaster.models.networks.filling) moments after creating it: younger ones are
# left be
STALE_TMP_SECONDS = 60.0


class BundleCache:
    """Unpacked bundles under ``root``: ``get(sha256, fetch)`` returns a verified folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Where the bundle with archive ``sha256`` lives in the cache."""
        if not SHA256.match(sha256):
            raise ArtifactError(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256

    def get(self, sha256: str, fetch: Callable[[], bytes | None]) -> Path:
        """The verified folder of bundle ``sha256``; ``fetch()`` supplies the archive on a miss (None: none exists).

        Raises:
            ArtifactError: the archive is missing, does not match ``sha256`` or cannot be unpacked.
        """
        folder = self.path(sha256)
        if self.verified(sha256):
            return folder
        if folder.exists():
            logger.warning("cached bundle %s does not match its sha256: unpacking it again", folder)
            shutil.rmtree(folder, ignore_errors=True)
        data = fetch()
        if data is None:
            raise ArtifactError(f"no stored artefact with sha256 {sha256[:12]} (pruned or never stored)")
        if (actual := bytes_sha256(data)) != sha256:
            raise ArtifactError(f"stored artefact is corrupt: sha256 {actual[:12]} != recorded {sha256[:12]}")
        self._sweep()
        try:
            bundle_from_bytes(data, folder)
        except (ArtifactError, OSError):
            if not self.verified(sha256):  # not just another process filling the same entry first
                raise
        return folder

    def verified(self, sha256: str) -> bool:
        """True when the cached folder exists and its archive has exactly this sha256."""
        folder = self.path(sha256)
        try:
            return folder.is_dir() and bytes_sha256(bundle_to_bytes(folder)) == sha256
        except (ArtifactError, OSError):
            return False

    def _sweep(self) -> None:
        """Remove temporary fill folders left by killed processes; never one that a live process is filling."""
        if not self.root.exists():
            return
        cutoff = time.time() - STALE_TMP_SECONDS
        for tmp in self.root.glob(".*"):
            try:
                if tmp.is_dir() and tmp.stat().st_mtime < cutoff and not filling(tmp):
                    shutil.rmtree(tmp, ignore_errors=True)
            except OSError:
                continue
