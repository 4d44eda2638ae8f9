"""Model artefacts in the database: the model_artifacts table; existing bundles are moved in, and written back out.

``model_versions.artifact_sha256`` becomes the sha256 of the archive (the cache key). ``artifact_path`` stays, as a
hint of where the bundle was on disk. A version whose bundle folder is missing or does not match its recorded
sha256 gets no artefact (it was unusable before too; a champion without one is replaced by a full retrain).
The downgrade writes every stored archive back out as a folder (to ``artifact_path``, or for versions made after
this revision to ``$TSLA_FORECAST_HOME/models/<ticker>/version-<id>``) and restores the folder sha256.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from db.engine import DEFAULT_HOME, ENV_HOME
from db.schema import utcnow
from forecaster.models.networks import ArtifactError, bundle_from_bytes, bundle_to_bytes, bytes_sha256, directory_sha256

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")
versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("ticker", sa.String),
    sa.column("artifact_path", sa.Text),
    sa.column("artifact_sha256", sa.String),
)
artifacts = sa.table(
    "model_artifacts",
    sa.column("model_version_id", sa.Integer),
    sa.column("sha256", sa.String),
    sa.column("size", sa.BigInteger),
    sa.column("data", sa.LargeBinary),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Create model_artifacts and move every intact bundle folder into it."""
    op.create_table(
        "model_artifacts",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_model_artifacts_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("model_version_id", name=op.f("pk_model_artifacts")),
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(versions).order_by(versions.c.id)).all():
        data = _archive(Path(row.artifact_path), row.artifact_sha256)
        if data is None:
            logger.warning("model version %d: bundle %s missing or corrupt; no artefact stored", row.id,
                           row.artifact_path)  # fmt: skip
            continue
        sha = bytes_sha256(data)
        conn.execute(sa.insert(artifacts).values(model_version_id=row.id, sha256=sha, size=len(data), data=data,
                                                 created_at=utcnow()))  # fmt: skip
        conn.execute(sa.update(versions).where(versions.c.id == row.id).values(artifact_sha256=sha))


def downgrade() -> None:
    """Write every stored archive back out as a bundle folder, then drop model_artifacts."""
    conn = op.get_bind()
    query = sa.select(versions, artifacts.c.data).join(artifacts, artifacts.c.model_version_id == versions.c.id)
    for row in conn.execute(query.order_by(versions.c.id)).all():
        folder = _target(row)
        if not folder.exists():
            bundle_from_bytes(row.data, folder)
        elif bytes_sha256(bundle_to_bytes(folder)) != bytes_sha256(row.data):
            raise ArtifactError(f"model version {row.id}: {folder} exists with other content; move it away first")
        conn.execute(sa.update(versions).where(versions.c.id == row.id)
                     .values(artifact_path=str(folder), artifact_sha256=directory_sha256(folder)))  # fmt: skip
    op.drop_table("model_artifacts")


def _archive(folder: Path, recorded: str) -> bytes | None:
    """The archive of an intact bundle folder (its folder sha256 as recorded), else None."""
    try:
        if folder.is_absolute() and folder.is_dir() and directory_sha256(folder) == recorded:
            return bundle_to_bytes(folder)
    except (ArtifactError, OSError):
        pass
    return None


def _target(row) -> Path:
    """Where the downgrade writes a version's bundle: its recorded absolute path, else under the model store."""
    path = Path(row.artifact_path)
    if path.is_absolute():
        return path
    home = Path(os.environ.get(ENV_HOME) or DEFAULT_HOME).expanduser()
    return home / "models" / row.ticker / f"version-{row.id}"
