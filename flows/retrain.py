"""``retrain-model``: a full retrain on demand or on the weekly schedule (trains, gates, registers; no forecasts)."""

from __future__ import annotations

import datetime as dt

from prefect import flow, unmapped

from flows.daily import forecast_ticker
from flows.settings import Settings
from flows.tickers import Ticker
from forecaster.data.calendar import resolve_as_of


@flow(name="retrain-model", log_prints=True)
def retrain_model(
    tickers: list[Ticker] | None = None,
    as_of: dt.date | None = None,
    source: str | None = None,
    horizon: int | None = None,
    preset: str | None = None,
) -> list[dict]:
    """Full retrain of every ticker on data up to ``as_of``; the candidate is promoted only if the gate passes.

    A parameter left out (None) takes its value from :class:`~flows.settings.Settings`.
    """
    day = resolve_as_of(as_of)
    if day is None:
        return []
    futures = forecast_ticker.map(tickers or Settings().tickers, unmapped(day), unmapped(source), unmapped("full"),
                                  unmapped(horizon), unmapped(preset), unmapped("retrain"))  # fmt: skip
    return [f.result() for f in futures]
