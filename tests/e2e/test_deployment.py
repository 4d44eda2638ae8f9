"""``deployment.yaml`` through the real stack: server, process pool, ``prefect deploy --all``, a worker, and
``prefect deployment run 'daily-forecast/daily' ... --watch``; then the forecasts are read back from the database.

The flow run is a child of the worker, which is a child of this test: it finds the database and model store only
through the inherited TSLA_FORECAST_HOME, so forecasts in ``<tmp>/home/forecast.db`` prove the environment reached it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.db.helpers import count_rows
from tests.e2e.conftest import PREFECT, ROOT, Stack, describe

# One test process runs this module and test_operations.py, so that they share one SQLite stack (`make test`).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600), pytest.mark.xdist_group("e2e-sqlite-stack")]

AS_OF = dt.date(2024, 3, 14)  # a Thursday session inside the generated CSV (2023-01-03 .. 2024-08-06)
HORIZON = 3
DEPLOYMENTS = {
    "daily-forecast/daily": "flows/daily.py:daily_forecast",
    "retrain-model/weekly-retrain": "flows/retrain.py:retrain_model",
    "backfill/backfill": "flows/backfill.py:backfill",
    "backtest/backtest": "flows/backtest.py:backtest",
}


@pytest.fixture(scope="module")
def prices_csv(stack: Stack) -> Path:
    from forecaster.data.sources import generate_prices

    path = stack.tmp / "prices.csv"
    generate_prices(seed=11, n=400, start="2023-01-03").to_csv(path, index_label="date")
    return path


def run_daily(stack: Stack, csv: Path):
    """``prefect deployment run 'daily-forecast/daily' ... --watch``: exits 0 only if the run is Completed."""
    return stack.cli(
        PREFECT, "deployment", "run", "daily-forecast/daily",
        "--param", f"source=csv:{csv}", "--param", f"as_of={AS_OF}",
        "--param", "preset=smoke", "--param", f"horizon={HORIZON}",
        "--watch", "--watch-timeout", "300",
        timeout=360,
    )  # fmt: skip


def flow_run_id(output: str) -> str:
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
    assert match, f"no flow run UUID in:\n{output}"
    return match.group(1)


def forecast_rows(stack: Stack) -> list[tuple]:
    from db.repository import Repository
    from db.schema import Forecast

    repo = Repository.from_url(stack.db_url)
    try:
        with repo.engine.connect() as conn:
            query = (
                sa.select(
                    Forecast.ticker,
                    Forecast.as_of,
                    Forecast.horizon,
                    Forecast.target_date,
                    Forecast.point,
                    Forecast.model_version_id,
                )
                .where(Forecast.as_of == AS_OF)
                .order_by(Forecast.horizon)
            )
            return [tuple(r) for r in conn.execute(query)]
    finally:
        repo.dispose()


@pytest.fixture(scope="module")
def first_run(stack: Stack, prices_csv: Path):
    result = run_daily(stack, prices_csv)
    assert result.returncode == 0, f"{describe(result)}\n{stack.logs()}"
    return result


def test_every_deployment_is_registered_on_the_pool_with_its_schedule(stack: Stack):
    deployments = json.loads(stack.api_post("/deployments/filter"))
    flows = {f["id"]: f["name"] for f in json.loads(stack.api_post("/flows/filter"))}
    by_name = {f"{flows[d['flow_id']]}/{d['name']}": d for d in deployments}
    assert set(by_name) == set(DEPLOYMENTS), stack.logs()
    for name, entrypoint in DEPLOYMENTS.items():
        d = by_name[name]
        assert d["entrypoint"] == entrypoint and d["work_pool_name"] == "tsla-forecast"
        # the build step recorded the directory `prefect deploy` ran in: the runs load the code from this checkout
        pull = d["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
        assert Path(pull).resolve() == ROOT
        assert d["job_variables"]["env"]["PREFECT_LOGGING_EXTRA_LOGGERS"] == "forecaster,flows,db"
        assert d["parameters"] == {}, "parameters and their defaults come from the flow"
    cron = {
        name: [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in d["schedules"]]
        for name, d in by_name.items()
    }
    assert cron["daily-forecast/daily"] == [("30 17 * * 1-5", "America/New_York")]
    assert cron["retrain-model/weekly-retrain"] == [("0 6 * * 0", "America/New_York")]
    assert cron["backfill/backfill"] == [] and cron["backtest/backtest"] == []
    horizon = by_name["daily-forecast/daily"]["parameter_openapi_schema"]["properties"]["horizon"]
    assert horizon.get("default") is None, "left out, a parameter takes the worker's setting (TSLA_FORECAST_HORIZON)"
    limits = {n: ((d["global_concurrency_limit"] or {}).get("limit"), (d["concurrency_options"] or {}).get(
        "collision_strategy")) for n, d in by_name.items()}  # fmt: skip
    assert limits == {n: (None, None) if n.startswith("backtest/") else (1, "ENQUEUE") for n in DEPLOYMENTS}


def test_daily_deployment_run_stores_forecasts(stack: Stack, first_run):
    from db.repository import Repository

    rows = forecast_rows(stack)
    assert [r[2] for r in rows] == list(range(1, HORIZON + 1)), f"forecasts for {AS_OF}: {rows}\n{stack.logs()}"
    assert all(r[0] == "TSLA" and r[3] > AS_OF and r[4] > 0 for r in rows)
    repo = Repository.from_url(stack.db_url)
    try:
        run = repo.find_run("daily", "TSLA", AS_OF, status=None)
        assert run is not None and run.status == "succeeded", run and run.error
        assert run.flow_run_id == flow_run_id(first_run.stdout), "the run row belongs to the deployment's flow run"
        assert repo.champion("TSLA") is not None
        assert repo.artifact_data(repo.champion("TSLA").id) is not None, "the champion's bundle is in the database"
    finally:
        repo.dispose()


def test_second_run_of_the_same_day_completes_and_changes_nothing(stack: Stack, first_run, prices_csv: Path):
    from db.repository import Repository

    repo = Repository.from_url(stack.db_url)
    try:
        before = count_rows(repo)
        rows = forecast_rows(stack)
        again = run_daily(stack, prices_csv)
        assert again.returncode == 0, f"{describe(again)}\n{stack.logs()}"
        assert flow_run_id(again.stdout) != flow_run_id(first_run.stdout)
        assert count_rows(repo) == before
        assert forecast_rows(stack) == rows
    finally:
        repo.dispose()
