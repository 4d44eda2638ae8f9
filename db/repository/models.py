"""Model versions and their artefacts: registration with lineage, promotion, retention, and the registry reads."""

from __future__ import annotations

import datetime as dt
import hashlib
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from db.frames import as_date
from db.repository.base import ReaderBase, WriterBase, artifacts_table, versions_table
from db.schema import MODEL_KINDS, ModelVersion, utcnow


@dataclass(frozen=True)
class NewModelVersion:
    """A trained model to register: lineage (``parent_id``), data span, config, metrics and artefact."""

    ticker: str
    kind: str
    parent_id: int | None
    preset: str
    config: dict[str, Any]
    train_start: dt.date
    train_end: dt.date
    metrics: dict[str, Any]
    artifact_path: str
    artifact_sha256: str
    status: str = "candidate"


class ModelsUnitMixin(WriterBase):
    """Model version and artefact writes of a :class:`db.repository.UnitOfWork`."""

    def add_model_version(self, version: NewModelVersion, *, artifact: bytes | None = None) -> int:
        """Record a trained model with its lineage; ``status="champion"`` also promotes it. Returns its id.

        ``artifact`` (the bundle archive, whose sha256 must be ``version.artifact_sha256``) is stored in the same
        transaction, and artefacts that this version makes old are pruned (see :meth:`prune_artifacts`).
        """
        if version.kind not in MODEL_KINDS:
            raise ValueError(f"model kind {version.kind!r} is not one of {MODEL_KINDS}")
        if artifact is not None and (actual := hashlib.sha256(artifact).hexdigest()) != version.artifact_sha256:
            raise ValueError(f"artefact sha256 {actual[:12]} != the recorded {version.artifact_sha256[:12]}")
        values = asdict(version) | {
            "train_start": as_date(version.train_start), "train_end": as_date(version.train_end),
            "artifact_path": str(version.artifact_path), "created_at": utcnow(),
            "status": "candidate" if version.status == "champion" else version.status,
        }  # fmt: skip
        inserted = sa.insert(versions_table).values(values).returning(versions_table.c.id)
        version_id = int(self.conn.execute(inserted).scalar_one())
        if artifact is not None:
            row = {"model_version_id": version_id, "sha256": version.artifact_sha256, "size": len(artifact)}
            self.conn.execute(
                sa.insert(artifacts_table).values(row | {"data": artifact, "created_at": values["created_at"]})
            )
        if version.status == "champion":
            self.promote(version_id)
        else:
            self._apply_retention(version.ticker)
        return version_id

    def promote(self, version_id: int) -> None:
        """Make ``version_id`` the champion of its ticker and retire the previous champion."""
        v = versions_table.c
        ticker = self.conn.scalar(sa.select(v.ticker).where(v.id == version_id))
        if ticker is None:
            raise ValueError(f"model version {version_id} does not exist")
        self.conn.execute(
            sa.update(versions_table)
            .where(v.ticker == ticker, v.status == "champion", v.id != version_id)
            .values(status="retired")
        )
        self.conn.execute(sa.update(versions_table).where(v.id == version_id).values(status="champion"))
        self._apply_retention(ticker)

    def retire(self, version_id: int) -> None:
        """Retire ``version_id`` (a challenger the gate rejected, or one that was dropped or is unusable)."""
        v = versions_table.c
        done = self.conn.execute(sa.update(versions_table).where(v.id == version_id).values(status="retired"))
        if done.rowcount != 1:
            raise ValueError(f"model version {version_id} does not exist")

    def prune_artifacts(self, keep: int, ticker: str | None = None) -> list[int]:
        """Delete the artefacts of versions that are neither a champion nor among the ``keep`` newest of their
        ticker (registry rows and metrics stay). Returns the ids of the versions pruned."""
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        v = versions_table.c
        rank = sa.func.row_number().over(partition_by=v.ticker, order_by=v.id.desc()).label("rank")
        ranked = sa.select(v.id, v.status, rank)
        if ticker is not None:
            ranked = ranked.where(v.ticker == ticker)
        old = ranked.subquery()
        stale = sa.select(old.c.id).where(old.c.rank > keep, old.c.status != "champion")
        pruned = self.conn.execute(
            sa.delete(artifacts_table)
            .where(artifacts_table.c.model_version_id.in_(stale))
            .returning(artifacts_table.c.model_version_id)
        )
        return sorted(int(i) for i in pruned.scalars())

    def _apply_retention(self, ticker: str) -> None:
        if self.artifact_retention is not None:
            self.prune_artifacts(self.artifact_retention, ticker)


class ModelsMixin(ReaderBase):
    """Model registry reads (and artefact pruning in its own transaction) of a :class:`db.repository.Repository`."""

    if TYPE_CHECKING:  # provided by the composed Repository

        def transaction(self) -> AbstractContextManager[ModelsUnitMixin]: ...

    def champion(self, ticker: str) -> ModelVersion | None:
        """The current champion of ``ticker``, if any."""
        query = sa.select(ModelVersion).where(ModelVersion.ticker == ticker, ModelVersion.status == "champion")
        with self._session() as session:
            return session.scalars(query).first()

    def latest_full_fit(self, ticker: str) -> dt.date | None:
        """The data end of the newest live full fit of ``ticker``, promoted or not (backtest versions excluded)."""
        v = versions_table.c
        query = sa.select(v.config).where(v.ticker == ticker, v.kind == "full").order_by(v.id.desc())
        with self.engine.connect() as conn:
            for config in conn.scalars(query):
                if (config or {}).get("scope", "live") == "live" and "data_end" in config:
                    return as_date(config["data_end"])
        return None

    def challenger(self, ticker: str) -> ModelVersion | None:
        """The pending challenger of ``ticker``: its newest live version with status ``candidate`` and role
        ``challenger`` (newer than the champion), if any."""
        query = (
            sa.select(ModelVersion)
            .where(ModelVersion.ticker == ticker, ModelVersion.status == "candidate")
            .order_by(ModelVersion.id.desc())
            .limit(1)
        )
        with self._session() as session:
            row = session.scalars(query).first()
        champion = self.champion(ticker)
        if row is None or (row.config or {}).get("role") != "challenger":
            return None
        return row if champion is None or row.id > champion.id else None

    def model_version(self, version_id: int) -> ModelVersion | None:
        """One model version by id."""
        with self._session() as session:
            return session.get(ModelVersion, version_id)

    def artifact_data(self, version_id: int) -> bytes | None:
        """The stored archive of a model version, or None when it was pruned (or never stored)."""
        a = artifacts_table.c
        with self.engine.connect() as conn:
            data = conn.scalar(sa.select(a.data).where(a.model_version_id == version_id))
        return None if data is None else bytes(data)

    def list_versions(self, ticker: str | None = None, version_id: int | None = None) -> list[dict[str, Any]]:
        """Model versions (newest first) with their artefact's sha256 and size (None when pruned); reads no blob."""
        v, a = versions_table.c, artifacts_table.c
        query = sa.select(
            v.id, v.ticker, v.kind, v.parent_id, v.status, v.preset, v.train_start, v.train_end, v.created_at,
            v.artifact_path, v.artifact_sha256, a.sha256.label("stored_sha256"), a.size,
        ).outerjoin(artifacts_table, a.model_version_id == v.id)  # fmt: skip
        if ticker is not None:
            query = query.where(v.ticker == ticker)
        if version_id is not None:
            query = query.where(v.id == version_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(v.id.desc()))]

    def prune_artifacts(self, keep: int, ticker: str | None = None) -> list[int]:
        """:meth:`db.repository.UnitOfWork.prune_artifacts` in its own transaction."""
        with self.transaction() as tx:
            return tx.prune_artifacts(keep, ticker)
