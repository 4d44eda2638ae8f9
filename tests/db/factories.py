"""Synthetic prices and forecasts for the storage tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_prices(n: int = 60, seed: int = 0, start: str = "2024-01-02") -> pd.DataFrame:
    """A seeded random-walk price frame in the standard layout (``DatetimeIndex`` named ``date``)."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range(start, periods=n, name="date")
    close = 200 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    spread = np.abs(rng.normal(0, 0.01, n)) * close
    return pd.DataFrame(
        {
            "open": close + rng.normal(0, 0.5, n),
            "high": close + spread + 1,
            "low": close - spread - 1,
            "close": close,
            "volume": rng.integers(1_000_000, 5_000_000, n).astype(float),
        },
        index=index,
    )


def forecast_frame(prices: pd.DataFrame, origin_pos: int, horizons: int = 5, bias: float = 1.0) -> pd.DataFrame:
    """Forecasts made at bar ``origin_pos`` for the next ``horizons`` bars, in the forecaster's frame layout."""
    last = float(prices["close"].iloc[origin_pos])
    rows = []
    for h in range(1, horizons + 1):
        point = last + bias * h
        rows.append(
            {
                "as_of": prices.index[origin_pos],
                "horizon": h,
                "target_date": prices.index[origin_pos + h],
                "naive": last,
                "point": point,
                "lo80": point - 5 * h,
                "hi80": point + 5 * h,
                "lo95": point - 8 * h,
                "hi95": point + 8 * h,
            }
        )
    return pd.DataFrame(rows)
