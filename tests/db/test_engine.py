"""Engine and URL handling: defaults, SQLite pragmas, UTC timestamps and one-line errors without passwords."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from db import migrate
from db.engine import check_connection, database_url, make_engine, redact
from db.errors import BadDatabaseURLError, DatabaseUnavailableError, SchemaOutdatedError
from db.repository import Repository
from tests.db.helpers import count_rows

SECRET = "s3cr3t-pw"


def test_default_url_is_sqlite_under_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TSLA_FORECAST_DATABASE_URL", raising=False)
    monkeypatch.setenv("TSLA_FORECAST_HOME", str(tmp_path / "home"))
    assert database_url() == f"sqlite:///{tmp_path / 'home' / 'forecast.db'}"
    assert database_url(tmp_path / "other") == f"sqlite:///{tmp_path / 'other' / 'forecast.db'}"


def test_environment_url_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSLA_FORECAST_DATABASE_URL", "postgresql+psycopg://u@h:5432/db")
    assert database_url() == "postgresql+psycopg://u@h:5432/db"


@pytest.mark.parametrize(
    "url",
    [f"postgresql+psycopg://me:{SECRET}@db.example:5432/x", f"postgresql+psycopg://me:{SECRET}@h:notaport/x"],
)
def test_redact_hides_the_password_even_in_malformed_urls(url: str) -> None:
    assert SECRET not in redact(url) and "me:***@" in redact(url)


def test_sqlite_engine_creates_its_folder_under_the_home_and_sets_wal_and_foreign_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSLA_FORECAST_HOME", str(tmp_path))  # only folders under the home are created (#20 item 4)
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'forecast.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert conn.exec_driver_sql("SELECT sqrt(16.0)").scalar() == 4.0
    engine.dispose()
    assert (tmp_path / "new" / "dir" / "forecast.db").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"not a url :{SECRET}@", "malformed database URL"),
        (f"postgresql+psycopg://me:{SECRET}@h:port/db", "malformed database URL"),
        (f"postgresql://me:{SECRET}@localhost/db", r"use postgresql\+psycopg://"),
        (f"mysql://me:{SECRET}@localhost/db", "unsupported database URL"),
    ],
)
def test_bad_urls_raise_one_clear_line_without_the_password(url: str, message: str) -> None:
    with pytest.raises(BadDatabaseURLError, match=message) as info:
        make_engine(url)
    assert SECRET not in str(info.value) and "\n" not in str(info.value)


def test_unreachable_server_raises_one_line_without_the_password() -> None:
    engine = make_engine(f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db")
    with pytest.raises(DatabaseUnavailableError, match=r"cannot connect to database .*127\.0\.0\.1:1") as info:
        check_connection(engine)
    assert SECRET not in str(info.value) and "\n" not in str(info.value)


def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "forecast.db").mkdir()  # a folder where the file should be
    with pytest.raises(DatabaseUnavailableError, match="cannot connect to database"):
        check_connection(make_engine(f"sqlite:///{tmp_path / 'forecast.db'}"))


def test_empty_database_is_reported_as_outdated_with_the_upgrade_hint(db_url: str) -> None:
    with pytest.raises(SchemaOutdatedError, match=r"no schema yet.*run `tsla-forecast db upgrade`"):
        Repository.from_url(db_url)


def test_older_schema_is_reported_with_the_upgrade_hint(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate.upgrade(db_url)
    monkeypatch.setattr(migrate, "head_revision", lambda: "0002")  # the code moved on; the database did not
    with pytest.raises(SchemaOutdatedError, match=r"older than the code \(0002\); run `tsla-forecast db upgrade`"):
        Repository.from_url(db_url)


def test_current_schema_opens(migrated_url: str) -> None:
    repo = Repository.from_url(migrated_url)
    assert count_rows(repo)["prices"] == 0
    repo.dispose()


def test_timestamps_come_back_as_aware_utc(repo: Repository) -> None:
    run_id = repo.start_run("daily", "TSLA", dt.date(2024, 3, 1))
    run = repo.run(run_id)
    assert run is not None and run.started_at.tzinfo == dt.UTC
    assert abs(dt.datetime.now(dt.UTC) - run.started_at) < dt.timedelta(minutes=1)


def test_naive_timestamps_are_rejected(engine: sa.Engine) -> None:
    from db.schema import Run

    with pytest.raises(sa.exc.StatementError, match="has no time zone"), engine.begin() as conn:
        conn.execute(
            sa.insert(Run.__table__).values(
                kind="daily", ticker="TSLA", as_of=dt.date(2024, 1, 2), status="running", started_at=dt.datetime.now()
            )
        )
