"""`tsla-forecast models list|show|export|prune`: the registry and its stored artefacts, without TensorFlow."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys

import pytest

from db import migrate
from db.repository import NewModelVersion, Repository
from forecaster.models.networks import BUNDLE_FILES, bundle_to_bytes
from tests.cli.conftest import ROOT


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A home whose database holds 3 versions of TSLA (the first is champion) with fake bundle archives."""
    home = tmp_path / "home"
    monkeypatch.setenv("TSLA_FORECAST_HOME", str(home))
    monkeypatch.delenv("TSLA_FORECAST_DATABASE_URL", raising=False)
    url = f"sqlite:///{home / 'forecast.db'}"
    home.mkdir()
    migrate.upgrade(url)
    repo = Repository.from_url(url)
    archives = {}
    for i in range(3):
        folder = tmp_path / f"bundle{i}"
        folder.mkdir()
        for name in BUNDLE_FILES:
            (folder / name).write_bytes(f"{name} {i}".encode())
        data = bundle_to_bytes(folder)
        with repo.transaction() as uow:
            vid = uow.add_model_version(NewModelVersion(
                "TSLA", "full", None, "smoke", {"horizon": 3}, dt.date(2024, 1, 2), dt.date(2024, 6, 3),
                {"validation": {"rmse": 1.0}}, "cache/x", hashlib.sha256(data).hexdigest(),
                status="champion" if i == 0 else "candidate",
            ), artifact=data)  # fmt: skip
        archives[vid] = folder
    repo.dispose()
    return home, archives


def test_list_and_show_describe_versions_and_their_artefacts(cli, registry):
    listed = cli("models", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "ticker", "kind", "status"] and len(lines) == 4
    assert "champion" in lines[3] and "kB" in lines[3]
    shown = cli("models", "show", "2")
    assert shown.returncode == 0 and '"stored": true' in shown.stdout and '"rmse": 1.0' in shown.stdout


def test_export_writes_the_verified_bundle_folder(cli, registry, tmp_path):
    _, archives = registry
    result = cli("models", "export", "2", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert bundle_to_bytes(tmp_path / "out") == bundle_to_bytes(archives[2])


def test_prune_keeps_champions_and_the_newest_and_export_of_a_pruned_version_is_one_line(cli, registry, tmp_path):
    result = cli("models", "prune", "--keep", "1")
    assert result.returncode == 0 and "pruned 1 artefact(s)" in result.stdout and result.stdout.strip().endswith(": 2")
    assert "pruned" in [line for line in cli("models", "list").stdout.splitlines() if line.split()[0] == "2"][0]
    failed = cli("models", "export", "2", str(tmp_path / "out"))
    assert failed.returncode == 1 and failed.stderr.startswith("error: model version 2 has no stored artefact")
    assert failed.stderr.count("\n") == 1 and not (tmp_path / "out").exists()
    missing = cli("models", "show", "99")
    assert missing.returncode == 1 and missing.stderr == "error: model version 99 does not exist (see " \
        "`tsla-forecast models list`)\n"  # fmt: skip


def test_models_commands_never_import_tensorflow_or_prefect(registry, tmp_path):
    script = (
        "import sys\n"
        "from flows.cli import app\n"
        "app(['models', 'list'], standalone_mode=False)\n"
        "app(['models', 'export', '1', sys.argv[1]], standalone_mode=False)\n"
        "assert not {'tensorflow', 'keras', 'prefect'} & set(sys.modules), 'heavy import'\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x")], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
