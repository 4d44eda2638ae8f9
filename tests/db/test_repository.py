"""Repository behaviour on SQLite and PostgreSQL: upserts, runs, model versions, metrics and read helpers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from db.errors import RunNotRunningError
from db.repository import NewModelVersion, Repository, UnitOfWork
from tests.db.factories import forecast_frame, synthetic_prices
from tests.db.helpers import count_rows, forecasts_due_for_scoring, skip_run, table_snapshot

TICKER = "TSLA"
AS_OF = dt.date(2024, 3, 1)


def _version(uow: UnitOfWork, parent_id: int | None = None, status: str = "candidate", kind: str = "full") -> int:
    return uow.add_model_version(NewModelVersion(
        TICKER, kind, parent_id, "default", {"units": 64}, dt.date(2020, 1, 2), dt.date(2024, 1, 31),
        {"val_rmse": 1.5}, "/models/v", "ab" * 32, status=status,
    ))  # fmt: skip


def _write_daily_run(repo: Repository, prices: pd.DataFrame, run_id: int | None = None, kind: str = "daily") -> int:
    """Everything one daily run writes, in one transaction (a run already finished is not finished again)."""
    run_id = run_id or repo.start_run(kind, TICKER, AS_OF)
    finish = repo.run(run_id).status == "running"
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
        version = repo.champion(TICKER)
        version_id = version.id if version else _version(uow, status="champion")
        for origin in range(min(30, len(prices) - 5)):
            uow.upsert_forecasts(run_id, version_id, TICKER, forecast_frame(prices, origin))
        uow.write_metrics(run_id, version_id, "validation", {"rmse": 1.25, "mae": 0.75}, AS_OF, AS_OF)
        if finish:
            uow.finish_run(run_id, model_version_id=version_id)
    return run_id


def _snapshot(repo: Repository) -> dict[str, list]:
    return {table: table_snapshot(repo, table) for table in ("prices", "model_versions", "forecasts", "metrics")}


def test_prices_round_trip_in_the_standard_frame_layout(repo: Repository) -> None:
    prices = synthetic_prices(20)
    with repo.transaction() as uow:
        assert uow.upsert_prices(TICKER, prices, "synthetic") == 20
    loaded = repo.load_prices(TICKER)
    assert loaded.index.name == "date" and list(loaded.columns) == ["open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(loaded, prices, check_freq=False, check_index_type=False)
    assert repo.latest_price_date(TICKER) == prices.index[-1].date()
    assert len(repo.load_prices(TICKER, start=prices.index[5], end=prices.index[9].date())) == 5


def test_rewriting_identical_prices_changes_nothing(repo: Repository) -> None:
    prices = synthetic_prices(20)
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
    before = table_snapshot(repo, "prices")
    with repo.transaction() as uow:
        assert uow.upsert_prices(TICKER, prices, "synthetic") == 0
    assert table_snapshot(repo, "prices") == before  # fetched_at included: untouched rows keep it


def test_changed_prices_update_in_place(repo: Repository) -> None:
    prices = synthetic_prices(20)
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
    revised = prices.copy()
    revised.iloc[-2:, revised.columns.get_loc("close")] += 1.0
    with repo.transaction() as uow:
        assert uow.upsert_prices(TICKER, revised, "synthetic") == 2
    assert count_rows(repo)["prices"] == 20
    assert repo.load_prices(TICKER)["close"].iloc[-1] == pytest.approx(prices["close"].iloc[-1] + 1.0)


def test_price_frame_without_close_is_rejected_by_name(repo: Repository) -> None:
    with pytest.raises(ValueError, match=r"price frame lacks column\(s\) \['close'\]"), repo.transaction() as uow:
        uow.upsert_prices(TICKER, synthetic_prices(5).drop(columns="close"), "synthetic")


def test_rerunning_the_same_run_leaves_identical_rows(repo: Repository) -> None:
    prices = synthetic_prices(40)
    run_id = _write_daily_run(repo, prices)
    counts, snapshot = count_rows(repo), _snapshot(repo)
    _write_daily_run(repo, prices, run_id=run_id)
    assert count_rows(repo) == counts
    assert _snapshot(repo) == snapshot


def test_a_new_run_with_the_same_forecasts_adds_no_forecast_rows(repo: Repository) -> None:
    prices = synthetic_prices(40)
    _write_daily_run(repo, prices)
    forecasts = table_snapshot(repo, "forecasts")
    _write_daily_run(repo, prices, kind="retrain")  # a second run of the same day (another kind: one per key)
    assert table_snapshot(repo, "forecasts") == forecasts
    assert count_rows(repo)["runs"] == 2


def test_changed_forecasts_are_updated_and_owned_by_the_new_run(repo: Repository) -> None:
    prices = synthetic_prices(20)
    first = _write_daily_run(repo, prices)
    version_id = repo.champion(TICKER).id
    second = repo.start_run("daily", TICKER, AS_OF)
    with repo.transaction() as uow:
        assert uow.upsert_forecasts(second, version_id, TICKER, forecast_frame(prices, 0, bias=2.0)) == 5
    rows = repo.recent_outcomes(TICKER, last=1000)
    assert len(rows) == 15 * 5 and set(rows["run_id"]) == {first, second}


def test_backtest_and_baseline_forecasts_stay_out_of_live_history(repo: Repository) -> None:
    prices = synthetic_prices(20)
    run_id = repo.start_run("backtest", TICKER, AS_OF)
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
        version_id = _version(uow)
        uow.upsert_forecasts(run_id, version_id, TICKER, forecast_frame(prices, 0), scope="backtest")
        uow.upsert_forecasts(run_id, version_id, TICKER, forecast_frame(prices, 0), scope="backtest", model="naive")
    assert repo.recent_outcomes(TICKER).empty
    assert sorted(set(repo.recent_outcomes(TICKER, scope="backtest")["model"])) == ["lstm", "naive"]


def test_a_transaction_that_fails_halfway_leaves_nothing_behind(repo: Repository) -> None:
    prices = synthetic_prices(20)
    run_id = repo.start_run("daily", TICKER, AS_OF)
    with pytest.raises(RuntimeError, match="boom"), repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
        version_id = _version(uow, status="champion")
        uow.upsert_forecasts(run_id, version_id, TICKER, forecast_frame(prices, 0))
        raise RuntimeError("boom")
    repo.fail_run(run_id, "RuntimeError: boom")
    assert count_rows(repo) == {
        "prices": 0,
        "model_versions": 0,
        "model_artifacts": 0,
        "runs": 1,
        "forecasts": 0,
        "metrics": 0,
        "price_revisions": 0,
    }
    run = repo.find_run("daily", TICKER, AS_OF, status="failed")
    assert run is not None and run.error == "RuntimeError: boom" and run.finished_at is not None


def test_a_database_error_halfway_rolls_back_the_earlier_writes(repo: Repository) -> None:
    prices = synthetic_prices(20)
    run_id = repo.start_run("daily", TICKER, AS_OF)
    with pytest.raises(sa.exc.IntegrityError), repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
        uow.upsert_forecasts(run_id, 999, TICKER, forecast_frame(prices, 0))  # no such model version
    assert count_rows(repo)["prices"] == 0


def test_runs_go_from_running_to_succeeded(repo: Repository) -> None:
    run_id = repo.start_run("daily", TICKER, AS_OF, flow_run_id="abc", details={"retrain": "auto"})
    assert repo.run(run_id).status == "running"
    assert repo.find_run("daily", TICKER, AS_OF) is None
    with repo.transaction() as uow:
        uow.finish_run(run_id, details={"retrain": "auto", "rows": 3})
    run = repo.find_run("daily", TICKER, AS_OF)
    assert run.id == run_id and run.status == "succeeded" and run.details == {"retrain": "auto", "rows": 3}
    assert run.finished_at >= run.started_at


def test_skipped_runs_keep_their_reason(repo: Repository) -> None:
    run_id = repo.start_run("daily", TICKER, AS_OF)
    skip_run(repo, run_id, "already succeeded")
    run = repo.find_run("daily", TICKER, AS_OF, status="skipped")
    assert run is not None and run.id == run_id and run.error == "already succeeded"


def test_a_run_taken_over_meanwhile_cannot_succeed_and_its_writes_roll_back(repo: Repository) -> None:
    run_id = repo.start_run("daily", TICKER, AS_OF)
    repo.fail_run(run_id, "interrupted: taken over by a rerun")  # what a rerun does to a run whose lock it got
    with pytest.raises(RunNotRunningError, match=f"run {run_id} is failed, no longer running"):
        with repo.transaction() as uow:
            uow.upsert_prices(TICKER, synthetic_prices(5), "synthetic")
            uow.finish_run(run_id)
    assert count_rows(repo)["prices"] == 0 and repo.run(run_id).status == "failed"


def test_finishing_an_unknown_run_is_an_error(repo: Repository) -> None:
    with pytest.raises(ValueError, match="run 42 does not exist"), repo.transaction() as uow:
        uow.finish_run(42)


def test_model_versions_keep_their_lineage(repo: Repository) -> None:
    with repo.transaction() as uow:
        root = _version(uow, status="champion")
        child = _version(uow, parent_id=root, kind="finetune")
    version = repo.model_version(child)
    assert version.parent_id == root and version.kind == "finetune" and version.status == "candidate"
    assert version.config == {"units": 64} and version.metrics == {"val_rmse": 1.5}
    assert version.train_end == dt.date(2024, 1, 31) and version.created_at.tzinfo == dt.UTC


def test_promote_retires_the_previous_champion(repo: Repository) -> None:
    with repo.transaction() as uow:
        old = _version(uow, status="champion")
        new = _version(uow, parent_id=old, kind="finetune")
        uow.promote(new)
    assert repo.champion(TICKER).id == new
    assert repo.model_version(old).status == "retired"


def test_the_database_refuses_a_second_champion(repo: Repository) -> None:
    with repo.transaction() as uow:
        _version(uow, status="champion")
        other = _version(uow)
    with pytest.raises(sa.exc.IntegrityError), repo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE model_versions SET status = 'champion' WHERE id = :id"), {"id": other})
    with repo.transaction() as uow:  # candidates and retired versions are unlimited
        _version(uow)
        _version(uow, status="retired")


def test_unknown_model_kind_is_rejected(repo: Repository) -> None:
    with pytest.raises(ValueError, match="model kind 'huge'"), repo.transaction() as uow:
        _version(uow, kind="huge")


def test_rewriting_metrics_updates_them_in_place(repo: Repository) -> None:
    run_id = repo.start_run("retrain", TICKER, AS_OF)
    with repo.transaction() as uow:
        uow.write_metrics(run_id, None, "validation", {"rmse": 2.0, "mae": 1.0}, None, None)
    first = table_snapshot(repo, "metrics")
    with repo.transaction() as uow:
        uow.write_metrics(run_id, None, "validation", {"rmse": 2.0, "mae": 1.0}, None, None)
    assert table_snapshot(repo, "metrics") == first
    with repo.transaction() as uow:
        uow.write_metrics(run_id, None, "validation", {"rmse": 3.0, "u2": float("nan")}, AS_OF, AS_OF)
    values = {row[4]: row[5] for row in table_snapshot(repo, "metrics")}
    assert values == {"rmse": 3.0, "mae": 1.0, "u2": None}


def test_outcome_view_scores_errors_directions_and_intervals(repo: Repository) -> None:
    prices = synthetic_prices(20)
    _write_daily_run(repo, prices)
    row = repo.recent_outcomes(TICKER, last=200).iloc[0]
    actual = prices["close"].loc[row["target_date"]]
    last = prices["close"].loc[row["as_of"]]
    assert row["actual"] == pytest.approx(actual)
    assert row["error"] == pytest.approx(actual - row["point"])
    assert row["naive_error"] == pytest.approx(actual - last) and row["naive"] == pytest.approx(last)
    assert row["direction_hit"] == int(np.sign(row["point"] - last) == np.sign(actual - last) != 0)
    assert row["in80"] == int(row["lo80"] <= actual <= row["hi80"])


def test_only_matured_forecasts_are_due_for_scoring(repo: Repository) -> None:
    prices = synthetic_prices(20)
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices.iloc[:12], "synthetic")  # closes known up to bar 11
    _write_daily_run(repo, prices.iloc[:12])
    due = forecasts_due_for_scoring(repo, TICKER, prices.index[9].date())
    assert len(due) > 0 and due["target_date"].max() <= prices.index[9]
    all_due = forecasts_due_for_scoring(repo, TICKER, prices.index[-1].date())
    assert all_due["target_date"].max() == prices.index[11]


def test_recent_outcomes_returns_the_last_rows_oldest_first(repo: Repository) -> None:
    _write_daily_run(repo, synthetic_prices(40))
    recent = repo.recent_outcomes(TICKER, last=7)
    assert len(recent) == 7 and recent["target_date"].is_monotonic_increasing
    assert recent["target_date"].iloc[-1] == repo.recent_outcomes(TICKER, last=1000)["target_date"].max()


def test_live_outcomes_are_the_last_matured_horizon_one_rows(repo: Repository) -> None:
    prices = synthetic_prices(40)
    _write_daily_run(repo, prices)
    as_of = prices.index[25].date()
    rows = repo.live_outcomes(TICKER, as_of, window=10)
    h1 = forecasts_due_for_scoring(repo, TICKER, as_of).query("horizon == 1").tail(10)
    assert len(rows) == 10 and (rows["horizon"] == 1).all() and rows["actual"].notna().all()
    assert sorted(rows["forecast_id"]) == sorted(h1["forecast_id"])
    assert rows["target_date"].max() == pd.Timestamp(as_of)


def test_live_outcomes_without_history_are_empty(repo: Repository) -> None:
    assert repo.live_outcomes(TICKER, AS_OF).empty


def test_pending_bars_are_scored_as_if_stored_and_are_not_stored(repo: Repository) -> None:
    prices = synthetic_prices(40)
    run_id = repo.start_run("daily", TICKER, AS_OF)
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices.iloc[:30], "synthetic")  # closes known up to bar 29
        version_id = _version(uow, status="champion")
        for origin in range(30):  # the last forecasts target bars 30..34, not stored yet
            uow.upsert_forecasts(run_id, version_id, TICKER, forecast_frame(prices, origin))
    as_of, before = prices.index[32].date(), _snapshot(repo)
    stored_only = repo.live_outcomes(TICKER, as_of, window=50)
    with_pending = repo.live_outcomes(TICKER, as_of, window=50, pending=prices.iloc[30:33])
    assert _snapshot(repo) == before, "the pending bars are rolled back"
    assert (len(stored_only), len(with_pending)) == (29, 30), "bar 30 matures the last horizon-1 forecast"
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices.iloc[30:33], "synthetic")
    pd.testing.assert_frame_equal(with_pending, repo.live_outcomes(TICKER, as_of, window=50))
