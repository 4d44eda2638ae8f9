"""Model artefacts in the database, on SQLite and PostgreSQL: stored with their version, pruned by retention."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from db.repository import NewModelVersion, Repository, UnitOfWork
from tests.db.helpers import count_rows

TICKER = "TSLA"


def _blob(i: int) -> bytes:
    return f"archive {i}".encode() * 1000


def _add(uow: UnitOfWork, i: int, status: str = "candidate", ticker: str = TICKER) -> int:
    data = _blob(i)
    return uow.add_model_version(NewModelVersion(
        ticker, "full", None, "smoke", {}, dt.date(2024, 1, 2), dt.date(2024, 6, 3), {}, "cache/x",
        hashlib.sha256(data).hexdigest(), status=status,
    ), artifact=data)  # fmt: skip


def _stored(repo: Repository) -> list[int]:
    return sorted(v["id"] for v in repo.list_versions() if v["size"] is not None)


def test_artifact_is_stored_with_its_version_and_read_back(repo: Repository) -> None:
    with repo.transaction() as uow:
        version_id = _add(uow, 1)
    assert repo.artifact_data(version_id) == _blob(1)
    (row,) = repo.list_versions(version_id=version_id)
    assert row["size"] == len(_blob(1)) and row["stored_sha256"] == row["artifact_sha256"]


def test_a_failed_transaction_stores_no_artifact(repo: Repository) -> None:
    with pytest.raises(RuntimeError, match="boom"), repo.transaction() as uow:
        _add(uow, 1)
        raise RuntimeError("boom")
    assert count_rows(repo)["model_artifacts"] == 0 and count_rows(repo)["model_versions"] == 0


def test_an_artifact_that_does_not_match_its_sha256_is_refused(repo: Repository) -> None:
    with pytest.raises(ValueError, match="artefact sha256"), repo.transaction() as uow:
        version = NewModelVersion(TICKER, "full", None, "smoke", {}, dt.date(2024, 1, 2), dt.date(2024, 6, 3), {},
                                  "cache/x", "00" * 32)  # fmt: skip
        uow.add_model_version(version, artifact=b"data")
    assert count_rows(repo)["model_versions"] == 0


def test_retention_keeps_champions_and_the_newest_n_and_prunes_in_the_same_transaction(engine) -> None:
    repo = Repository(engine, artifact_retention=2)
    with repo.transaction() as uow:
        champion = _add(uow, 1, status="champion")
        other = _add(uow, 99, ticker="OTHER")
    ids = [champion]
    for i in range(2, 6):
        with repo.transaction() as uow:
            ids.append(_add(uow, i))
    assert _stored(repo) == sorted([champion, other, ids[-2], ids[-1]]), "champion + newest 2; OTHER untouched"
    assert len(repo.list_versions(TICKER)) == 5, "pruned versions keep their registry rows"
    with repo.transaction() as uow:
        uow.promote(ids[-1])  # the old champion is now old: its artefact goes in this transaction
    assert _stored(repo) == sorted([other, ids[-2], ids[-1]])
    assert repo.artifact_data(champion) is None


def test_prune_command_path_returns_what_it_pruned(repo: Repository) -> None:
    with repo.transaction() as uow:
        ids = [_add(uow, i) for i in range(4)]
    assert repo.prune_artifacts(keep=1) == ids[:3]
    assert repo.prune_artifacts(keep=1) == []
    assert _stored(repo) == [ids[-1]]
