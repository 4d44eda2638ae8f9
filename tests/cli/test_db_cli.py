"""`tsla-forecast db ...`: migrations from the command line, and bad input as one line without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from db import migrate
from db.errors import MigrationError
from flows.cli.db import db_app
from tests.db.fixtures import postgres_database

SECRET = "s3cr3t-pw"
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _assert_one_clean_error_line(result: Result, expected: str) -> None:
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output + result.stderr
    assert SECRET not in result.output + result.stderr


def test_upgrade_current_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forecast.db'}"
    result = runner.invoke(db_app, ["upgrade", "--database-url", url])
    assert result.exit_code == 0 and f"at revision {migrate.head_revision()}" in result.stdout
    assert runner.invoke(db_app, ["check", "--database-url", url]).exit_code == 0
    result = runner.invoke(db_app, ["downgrade", "base", "--database-url", url])
    assert result.exit_code == 0 and "base (empty)" in result.stdout
    assert "base (empty)" in runner.invoke(db_app, ["current", "--database-url", url]).stdout


def test_default_database_is_the_home_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSLA_FORECAST_HOME", str(tmp_path))
    assert runner.invoke(db_app, ["upgrade"]).exit_code == 0
    assert (tmp_path / "forecast.db").exists()


@pytest.mark.postgres
def test_upgrade_and_downgrade_on_postgresql(postgres_url: str) -> None:
    with postgres_database(postgres_url) as url:
        assert runner.invoke(db_app, ["upgrade", "--database-url", url]).exit_code == 0
        assert migrate.current_revision(url) == migrate.head_revision()
        assert runner.invoke(db_app, ["downgrade", "base", "--database-url", url]).exit_code == 0
        assert migrate.current_revision(url) is None


def test_unreachable_database_is_one_line_without_the_password() -> None:
    url = f"postgresql+psycopg://forecaster:{SECRET}@127.0.0.1:1/history"
    result = runner.invoke(db_app, ["upgrade", "--database-url", url])
    _assert_one_clean_error_line(result, "cannot connect to database postgresql+psycopg://forecaster:***@127.0.0.1:1")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql+psycopg://forecaster:{SECRET}@host:port/db", "malformed database URL"),
        (f"postgresql://forecaster:{SECRET}@127.0.0.1/db", "use postgresql+psycopg://"),
        ("nonsense", "malformed database URL"),
    ],
)
def test_malformed_url_is_one_line_without_the_password(url: str, expected: str) -> None:
    _assert_one_clean_error_line(runner.invoke(db_app, ["current", "--database-url", url]), expected)


def test_outdated_schema_tells_the_user_to_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forecast.db'}"
    result = runner.invoke(db_app, ["check", "--database-url", url])
    _assert_one_clean_error_line(result, "run `tsla-forecast db upgrade`")


def test_unknown_revision_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forecast.db'}"
    result = runner.invoke(db_app, ["downgrade", "nope", "--database-url", url])
    _assert_one_clean_error_line(result, f"migration failed on {url}: Can't locate revision identified by 'nope'")
    with pytest.raises(MigrationError, match="Can't locate revision identified by 'nope'"):
        migrate.downgrade(url, "nope")


def test_db_cli_runs_as_a_process_without_tensorflow_or_prefect(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from flows.cli.db import db_app\n"
        "assert not {'tensorflow', 'keras', 'prefect'} & set(sys.modules), 'heavy import'\n"
        "db_app()\n"
    )
    env = os.environ | {"TSLA_FORECAST_DATABASE_URL": f"postgresql+psycopg://u:{SECRET}@127.0.0.1:1/db"}
    result = subprocess.run(
        [sys.executable, "-c", script, "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: cannot connect") and result.stderr.count("\n") == 1
    assert SECRET not in result.stdout + result.stderr
