"""The production stack: Prefect's own database (``PREFECT_API_DATABASE_CONNECTION_URL``, ``postgresql+asyncpg``)
and the forecast database (``TSLA_FORECAST_DATABASE_URL``, ``postgresql+psycopg``) are fresh PostgreSQL databases.

One ``daily-forecast/daily`` deployment run goes through it; then both databases are read directly. The session's
SQLite stack is torn down before this one starts (an indirectly parametrised session fixture, see conftest.py).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e import test_deployment
from tests.e2e.conftest import Stack, describe
from tests.e2e.test_deployment import AS_OF, DEPLOYMENTS, HORIZON, flow_run_id, forecast_rows, run_daily

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(600)]
prices_csv = test_deployment.prices_csv  # the same generated CSV (a module-scoped fixture)


def prefect_tables(stack: Stack, run_id: str) -> tuple[set[str], str | None, int]:
    """Read Prefect's own PostgreSQL database: its table names, the flow run's state type, the deployment count."""
    assert stack.prefect_db_url, "this stack has no Prefect database URL"
    url = sa.engine.make_url(stack.prefect_db_url).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        if "flow_run" not in tables:
            return tables, None, 0
        with engine.connect() as conn:
            state = conn.execute(
                sa.text("select state_type from flow_run where id = :id"), {"id": uuid.UUID(run_id)}
            ).scalar_one_or_none()
            deployments = conn.execute(sa.text("select count(*) from deployment")).scalar_one()
        return tables, state, deployments
    finally:
        engine.dispose()


@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
def test_daily_deployment_run_with_prefect_and_the_forecasts_on_postgresql(stack: Stack, prices_csv: Path):
    from db.repository import Repository

    result = run_daily(stack, prices_csv)
    assert result.returncode == 0, f"{describe(result)}\n{stack.logs()}"
    run_id = flow_run_id(result.stdout)

    # our database: the flow run found it through TSLA_FORECAST_DATABASE_URL, not the SQLite default under its home
    assert sa.engine.make_url(stack.db_url).get_backend_name() == "postgresql"
    rows = forecast_rows(stack)
    assert [r[2] for r in rows] == list(range(1, HORIZON + 1)), f"forecasts for {AS_OF}: {rows}\n{stack.logs()}"
    repo = Repository.from_url(stack.db_url)
    try:
        run = repo.find_run("daily", "TSLA", AS_OF, status=None)
        assert run is not None and run.status == "succeeded", run and run.error
        assert run.flow_run_id == run_id, "the run row belongs to the deployment's flow run"
        assert repo.artifact_data(repo.champion("TSLA").id) is not None, "the champion's bundle is in PostgreSQL"
    finally:
        repo.dispose()
    assert not (stack.home / "forecast.db").exists(), "a flow run fell back to SQLite"

    # Prefect: the API says Completed, and the server keeps that run in its PostgreSQL database, not in PREFECT_HOME
    assert json.loads(stack.api_get(f"/flow_runs/{run_id}"))["state_type"] == "COMPLETED"
    tables, state, deployments = prefect_tables(stack, run_id)
    assert {"flow_run", "deployment", "work_pool", "alembic_version"} <= tables, (
        f"Prefect's tables are not in {stack.prefect_db_url}: {sorted(tables)}"
    )
    assert state == "COMPLETED", f"flow run {run_id} in Prefect's PostgreSQL database: {state}"
    assert deployments == len(DEPLOYMENTS)
    assert not (stack.tmp / "prefect" / "prefect.db").exists(), "the server also wrote an SQLite database"
