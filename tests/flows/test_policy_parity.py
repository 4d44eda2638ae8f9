"""One system: ``backtest --policy production`` replays exactly what the daily job does, on SQLite and PostgreSQL.

The settings make the policy act within 31 sessions: a challenger is graded after 3 sessions in shadow, and the
drift rule fires on a live U2 above 0.5 (the smoke model's is about 1), so the span holds fine-tunes, full
retrains triggered by drift (not age: the age limit is out of reach), promotions and rejections with their
fallback to the champion. The backfill runs the real daily job per session against the database; the backtest
runs the same policy step in memory. Forecasts and decisions must be identical.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from db.repository import Repository
from flows.backfill import backfill
from flows.jobs.backtest import BacktestParams, run_backtest_job
from flows.settings import Settings
from forecaster.data.calendar import next_sessions
from tests.flows.conftest import HomeFactory

START, END = dt.date(2024, 4, 30), dt.date(2024, 6, 12)  # 31 sessions
ARGS = {"source": "synthetic:3", "preset": "smoke", "horizon": 3}
ACTING = {"GATE_WINDOW": "3", "DRIFT_U2": "0.5", "DRIFT_MIN_LIVE": "5", "MAX_CHAMPION_AGE": "1000"}
BANDS = ["point", "lo80", "hi80", "lo95", "hi95"]
DECISION = ["as_of", "trained", "reason", "gate", "gate_reason", "fallback"]


def _next(day: dt.date) -> dt.date:
    return next_sessions(day, 1)[0].date()


def _stored(repo: Repository) -> tuple[pd.DataFrame, list[dict]]:
    """The daily job's published forecasts and each run's decisions, oldest first."""
    with repo.engine.connect() as conn:
        forecasts = pd.read_sql(
            sa.text("SELECT as_of, horizon, target_date, naive, point, lo80, hi80, lo95, hi95 FROM forecasts "
                    "WHERE scope = 'live' ORDER BY as_of, horizon"), conn, parse_dates=["as_of", "target_date"],
        )  # fmt: skip
        details = conn.execute(sa.text("SELECT details FROM runs WHERE kind = 'daily' ORDER BY as_of")).scalars()
        decisions = [{k: (d if isinstance(d, dict) else json.loads(d))[k] for k in DECISION}
                     for d in details]  # fmt: skip
    return forecasts, decisions


@pytest.fixture(scope="session")
def policy_backtest(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    """The backtest of the span under the acting settings (its summary and LSTM forecasts). It reads and writes no
    database, so it runs once per test process and is compared with the daily job on each backend (``make test``
    keeps both backends in one process: the ``xdist_group`` mark below, pytest < 9.2 in pyproject.toml)."""
    out = tmp_path_factory.mktemp("policy-backtest")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TSLA_FORECAST_HOME", str(out / "home"))
        env.delenv("TSLA_FORECAST_DATABASE_URL", raising=False)
        for name, value in ACTING.items():
            env.setenv(f"TSLA_FORECAST_{name}", value)
        params = BacktestParams.from_settings(Settings(), _next(START), _next(END), ticker="TSLA", **ARGS)
        summary = run_backtest_job(params, out / "bt", None)
    backtest = pd.read_csv(out / "bt" / "forecasts.csv", parse_dates=["as_of", "target_date"])
    return summary, backtest[backtest["model"] == "lstm"].sort_values(["as_of", "horizon"]).reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.xdist_group("policy-parity")  # both backends in one process: one backtest
def test_backtest_production_policy_equals_the_daily_job_where_the_policy_acts(
    tmp_path: Path, make_home: HomeFactory, monkeypatch: pytest.MonkeyPatch, policy_backtest: tuple[dict, pd.DataFrame]
) -> None:
    repo = make_home(tmp_path / "home")
    for name, value in ACTING.items():
        monkeypatch.setenv(f"TSLA_FORECAST_{name}", value)
    assert backfill(start=START, end=END, **ARGS)["succeeded"] == 31
    daily_forecasts, daily_decisions = _stored(repo)

    summary, backtest = policy_backtest
    trail = summary["policy"]["lstm"]["trail"]

    assert [{k: t[k] for k in DECISION} for t in trail] == daily_decisions
    counts = summary["policy"]["lstm"]["counts"]
    assert counts["sessions"] == 31 and counts["promotions"] >= 1 and counts["rejections"] >= 1
    assert counts["fallbacks"] == counts["rejections"] and counts["finetunes"] >= 1
    assert any(t["trained"] == "full" and "live U2" in t["reason"] for t in trail), "a full retrain by drift"
    assert not any("sessions old" in (t["reason"] or "") for t in trail), "none by age"
    assert len(daily_forecasts) == len(backtest) == 31 * 3
    pd.testing.assert_frame_equal(daily_forecasts[["as_of", "horizon", "target_date", "naive", *BANDS]],
                                  backtest[["as_of", "horizon", "target_date", "naive", *BANDS]],
                                  check_exact=True, check_dtype=False)  # fmt: skip
