"""The path the cron takes: ``tsla-forecast run`` with no ``--as-of``, at controlled wall-clock times (faketime).

The daily deployment fires at 17:30 New York time on weekdays, exchange holidays included. ``as_of`` is then the
last completed NYSE session: during the session the day's bar is still in progress and must not be stored, and on
a holiday the last session has usually run already, so nothing changes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from forecaster.data.sources import generate_prices
from tests.cli.conftest import ROOT
from tests.cli.test_cli_run import _env

pytestmark = pytest.mark.slow


def _faketime() -> str:
    path = shutil.which("faketime")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("faketime is not installed: CI must test the scheduled path", pytrace=False)
        pytest.skip("faketime is not installed")
    return path


def _run_at(utc: str, home: Path, csv: Path) -> subprocess.CompletedProcess:
    command = [_faketime(), utc, sys.executable, "-m", "flows.cli", "run", "--source", f"csv:{csv}",
               "--preset", "smoke", "--horizon", "3"]  # fmt: skip
    env = os.environ | _env(home) | {"TZ": "UTC"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _stored(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "forecast.db") as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def csv(tmp_path) -> Path:
    """Bars up to Friday 2024-12-27, so that every run below sees bars dated after its clock too."""
    path = tmp_path / "tsla.csv"
    prices = generate_prices(seed=4, n=900, start="2021-08-02")
    prices.loc[:"2024-12-27"].to_csv(path, index_label="date")
    return path


def test_during_the_session_the_previous_close_is_used_and_the_open_bar_is_not_stored(tmp_path, csv):
    home = tmp_path / "home"
    result = _run_at("2024-12-20 19:00:00", home, csv)  # 14:00 in New York: the session of the 20th is open
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TSLA 2024-12-19: succeeded" in result.stdout
    assert _stored(home, "SELECT MAX(date) FROM prices") == [("2024-12-19",)]
    assert _stored(home, "SELECT DISTINCT as_of FROM forecasts") == [("2024-12-19",)]


def test_on_a_weekday_holiday_the_last_session_is_already_done_and_nothing_changes(tmp_path, csv):
    home = tmp_path / "home"
    first = _run_at("2024-12-24 23:00:00", home, csv)  # 18:00 on Christmas Eve, a half day: its close is final
    assert first.returncode == 0 and "TSLA 2024-12-24: succeeded" in first.stdout, first.stderr[-3000:]
    before = {t: _stored(home, f"SELECT * FROM {t}") for t in ("prices", "forecasts", "model_versions")}
    holiday = _run_at("2024-12-25 22:30:00", home, csv)  # 17:30 on Christmas Day: the cron fires, NYSE is shut
    assert holiday.returncode == 0, holiday.stderr[-3000:]
    assert "TSLA 2024-12-24: already_done" in holiday.stdout
    assert {t: _stored(home, f"SELECT * FROM {t}") for t in before} == before
