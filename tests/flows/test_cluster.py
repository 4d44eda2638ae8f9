"""A Dask cluster that shares no disk: PostgreSQL is the only shared store.

A scheduler and two ``dask worker`` processes, each with its own ``TSLA_FORECAST_HOME`` (as if on separate
machines), run day 1 for 4 tickers. Then both homes are deleted, two new workers start with new empty homes and run
day 2: every ticker must fine-tune from its day-1 champion, which the new workers can only have read from the
database, and the forecasts must equal those of the same two days run on one machine, one ticker after another.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from db import migrate
from db.repository import Repository
from flows.dask_engine import ReusingDaskTaskRunner
from tests.db.fixtures import postgres_database
from tests.flows.dask_procs import ROOT, Cluster

DAY1, DAY2 = dt.date(2024, 6, 3), dt.date(2024, 6, 4)
TICKERS = ["AAA", "BBB", "CCC", "DDD"]
ARGS = {"source": "synthetic:3", "preset": "smoke", "horizon": 3}

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]


@pytest.fixture
def pg_url(postgres_url):
    """A new PostgreSQL database of this test's own, migrated to head."""
    with postgres_database(postgres_url) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def cluster(home, pg_url, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("TSLA_FORECAST_DATABASE_URL", pg_url)
    env = dict(os.environ) | {"PYTHONPATH": str(ROOT), "PREFECT_API_URL": str(PREFECT_API_URL.value()),
                              "TSLA_FORECAST_DATABASE_URL": pg_url}  # fmt: skip
    running = Cluster(env)
    try:
        yield running
    finally:
        running.close()


def _flow_on(address: str):
    from flows.daily import daily_forecast

    return daily_forecast.with_options(task_runner=ReusingDaskTaskRunner(address=address))


def _forecasts(repo: Repository, results: list[dict]) -> dict[str, list[tuple]]:
    return {r["ticker"]: [tuple(f.values()) for f in r["forecasts"]] for r in results}


def _on_one_machine(tmp_path: Path) -> tuple[dict, dict]:
    """The same two days in this process, one ticker after another, on SQLite: the reference forecasts."""
    from flows.jobs.daily import JobParams, run_ticker
    from flows.settings import Settings

    home = tmp_path / "one-machine"
    home.mkdir()
    url = f"sqlite:///{home / 'forecast.db'}"
    migrate.upgrade(url)
    settings = Settings(home=home, database_url=url, fetch_retries=0)
    repo = Repository.from_url(url)
    try:
        days = [
            [run_ticker(JobParams(t, day, retrain="auto", **ARGS), settings, repo).to_dict() for t in TICKERS]
            for day in (DAY1, DAY2)
        ]
        return _forecasts(repo, days[0]), _forecasts(repo, days[1])
    finally:
        repo.dispose()


def test_day_two_on_new_workers_with_empty_homes_fine_tunes_every_champion_from_the_database(cluster, tmp_path):
    homes1 = [tmp_path / "machine-1", tmp_path / "machine-2"]
    cluster.start_workers(homes1)
    day1 = _flow_on(cluster.address)(tickers=TICKERS, as_of=DAY1, **ARGS)
    assert [r["status"] for r in day1] == ["succeeded"] * 4, day1
    cluster.stop_workers()
    for home in homes1:  # the machines are gone, and their disks with them
        shutil.rmtree(home)

    homes2 = [tmp_path / "machine-3", tmp_path / "machine-4"]
    cluster.start_workers(homes2)
    day2 = _flow_on(cluster.address)(tickers=TICKERS, as_of=DAY2, **ARGS)
    assert [r["status"] for r in day2] == ["succeeded"] * 4, day2

    repo = Repository.from_url(os.environ["TSLA_FORECAST_DATABASE_URL"])
    try:
        champions = {r["ticker"]: repo.model_version(r["model_version_id"]) for r in day1}
        for r in day2:
            candidate = repo.model_version(r["candidate_version_id"])
            assert candidate.kind == "finetune", r["decision"]
            assert candidate.parent_id == champions[r["ticker"]].id
        cached = {p.name for home in homes2 for p in (home / "cache").iterdir() if not p.name.startswith(".")}
        assert cached == {v.artifact_sha256 for v in champions.values()}, "unpacked from the database on first use"
        got = (_forecasts(repo, day1), _forecasts(repo, day2))
    finally:
        repo.dispose()
    assert len({tuple(rows) for rows in got[0].values()}) == 4, "each ticker has its own series and forecasts"
    assert got == _on_one_machine(tmp_path), "the same forecasts as the same two days on one machine"
