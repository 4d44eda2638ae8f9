"""``backfill``: replay the daily job for every session in a range, exactly as if it had run each day.

Each day is an ordinary ``daily`` run, so a killed backfill resumes where it stopped (finished days are
skipped by the daily job's idempotency) and a later daily run of the same day changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

from prefect import flow
from tqdm import tqdm

from flows.daily import forecast_ticker
from flows.settings import Settings
from flows.tickers import Ticker
from forecaster.data.calendar import resolve_as_of, sessions
from forecaster.errors import ConfigError

logger = logging.getLogger("flows.backfill")


@flow(name="backfill", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    tickers: list[Ticker] | None = None,
    source: str | None = None,
    retrain: str | None = None,
    horizon: int | None = None,
    preset: str | None = None,
) -> dict[str, int]:
    """Run ``daily-forecast``'s per-ticker job for each NYSE session in ``[start, end]``, oldest first.

    A parameter left out (None) takes its value from :class:`~flows.settings.Settings`.
    """
    if start > end:
        raise ConfigError(f"backfill start {start} is after end {end}")
    latest = resolve_as_of(None)
    days = [] if latest is None else [d.date() for d in sessions(start, min(end, latest))]
    counts = {"succeeded": 0, "already_done": 0}
    for day in tqdm(days, desc="backfill", unit="day"):
        for ticker in tickers or Settings().tickers:
            result = forecast_ticker(ticker, day, source, retrain, horizon, preset)
            counts[result["status"]] = counts.get(result["status"], 0) + 1
    logger.info("backfill %s..%s: %s", start, end, counts)
    return counts
