"""A realistic report history written through the repository in a second: prices, one champion model version with
loss curves, and a succeeded daily run with H forecasts (and 80%/95% intervals) for each of the last sessions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from db.repository import NewModelVersion, Repository
from forecaster.data.calendar import next_sessions
from forecaster.data.sources import generate_prices

TICKER, HORIZON = "TSLA", 5


@dataclass
class SeededHistory:
    """What :func:`seed_history` wrote."""

    prices: pd.DataFrame
    days: list[dt.date]  # as-of days of the runs, oldest first
    run_ids: dict[dt.date, int]
    version_id: int
    parent_id: int


def seed_history(repo: Repository, runs: int = 80, n_prices: int = 300, seed: int = 0) -> SeededHistory:
    """Store ``n_prices`` synthetic sessions and a daily run with forecasts on each of the last ``runs`` of them."""
    prices = generate_prices(seed=seed, n=n_prices, start="2023-06-01")
    rng = np.random.default_rng(seed)
    with repo.transaction() as tx:
        tx.upsert_prices(TICKER, prices, f"synthetic:{seed}")
        common = {"config": {"full_fit_as_of": str(prices.index[-runs - 1].date())}, "artifact_path": "/nowhere",
                  "artifact_sha256": "0" * 64, "train_start": prices.index[0].date()}  # fmt: skip
        parent = tx.add_model_version(NewModelVersion(TICKER, "full", None, "smoke", metrics={}, status="retired",
                                                      train_end=prices.index[-runs - 2].date(), **common))  # fmt: skip
        history = {"loss": [0.9, 0.7, 0.6, 0.55], "val_loss": [1.0, 0.8, 0.75, 0.77]}
        metrics = {"validation": {"rmse": 4.2, "naive_rmse": 4.3, "u2": 0.977, "n": 42}, "history": history}
        version = tx.add_model_version(NewModelVersion(TICKER, "full", parent, "smoke", metrics=metrics,
                                                       status="champion", train_end=prices.index[-runs - 1].date(),
                                                       **common))  # fmt: skip
    days = [d.date() for d in prices.index[-runs:]]
    run_ids = {day: _seed_run(repo, prices, day, version, rng) for day in days}
    return SeededHistory(prices, days, run_ids, version, parent)


def _seed_run(repo: Repository, prices: pd.DataFrame, day: dt.date, version: int, rng: np.random.Generator) -> int:
    last = float(prices.loc[pd.Timestamp(day), "close"])
    steps = np.arange(1, HORIZON + 1)
    point = last * np.exp(rng.normal(0.0, 0.01, HORIZON))
    sd = 0.02 * last * np.sqrt(steps)
    frame = pd.DataFrame({"as_of": pd.Timestamp(day), "horizon": steps, "target_date": next_sessions(day, HORIZON),
                          "naive": last, "point": point, "lo80": point - 1.28 * sd, "hi80": point + 1.28 * sd,
                          "lo95": point - 1.96 * sd, "hi95": point + 1.96 * sd})  # fmt: skip
    run_id = repo.start_run("daily", TICKER, day, None, details={"ticker": TICKER})
    details = {"decision": "champion is 3 sessions from its full fit, live U2 0.990", "promoted": False,
               "gate": "kept champion: candidate RMSE 4.400 (U2 1.020) vs champion 4.300 (U2 0.990) over 60 sessions",
               "candidate_version_id": version}  # fmt: skip
    with repo.transaction() as tx:
        tx.upsert_forecasts(run_id, version, TICKER, frame)
        tx.finish_run(run_id, "succeeded", model_version_id=version, details=details)
    return run_id
