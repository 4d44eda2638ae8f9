"""The one forecaster interface shared by the LSTM and every baseline, and the forecast frame layout.

Every forecaster stores configuration in its constructor and does the work in ``fit``; fitted state ends in ``_``.

* ``fit(prices) -> self``: learn from a validated price frame (see :data:`forecaster.PRICE_COLUMNS`).
* ``update(prices, *, finetune=True) -> self``: move the forecast origin to the last row of ``prices`` (which
  extends the frame given to ``fit``), doing only cheap learning (with ``finetune`` the LSTM fine-tunes on the
  newly matured samples; baselines just re-read the data).
* ``predict(horizon) -> frame``: forecasts for the ``horizon`` sessions after the origin, one row per horizon, with
  the columns of :data:`FORECAST_COLUMNS`.
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

import pandas as pd

FORECAST_COLUMNS: tuple[str, ...] = (
    "as_of",  # as-of date: the last session whose close the forecast knows
    "horizon",  # 1..H trading days ahead
    "target_date",  # the session being forecast
    "naive",  # close on the origin date (the naive forecast for every horizon)
    "point",
    "lo80",
    "hi80",
    "lo95",
    "hi95",
)


@runtime_checkable
class Forecaster(Protocol):
    """What ``backtest.walk_forward`` and the flows need from a model."""

    name: str

    def fit(self, prices: pd.DataFrame) -> Self:
        """Learn from ``prices``; the origin becomes its last row."""
        ...

    def update(self, prices: pd.DataFrame, *, finetune: bool = True) -> Self:
        """Move the origin to the last row of ``prices``, with at most cheap learning (none unless ``finetune``)."""
        ...

    def predict(self, horizon: int) -> pd.DataFrame:
        """Forecast ``horizon`` sessions after the origin (frame with :data:`FORECAST_COLUMNS`)."""
        ...
