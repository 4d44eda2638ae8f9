"""Checks of a command's inputs before anything is written: Prefect has not started and no database is touched.

Whatever no retry can fix fails here, at once, with one line: an unknown preset or source, a missing, empty or
malformed price file, invalid prices, and an as-of session that a file (which never gets a new bar) does not have.
A live source (Yahoo) is asked nothing here: the run itself fetches it, with its retries.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from flows.settings import Settings
from forecaster.data.sources import PriceSource, is_live, parse_source
from forecaster.data.validation import ensure_valid
from forecaster.errors import ConfigError, FinalBarMissingError
from forecaster.models.presets import get_preset

logger = logging.getLogger("flows.cli")


def check_run_inputs(tickers: list[str], source: str, preset: str, last_day: dt.date | None,
                     settings: Settings) -> None:  # fmt: skip
    """Raise the one-line error a run with these inputs would end in before it could write anything.

    Args:
        last_day: the newest session the run forecasts from (None: not a trading day, nothing to fetch).
    """
    get_preset(preset)
    src = parse_source(source)
    if last_day is None or is_live(src):
        return
    for ticker in tickers:
        check_static_prices(src, source, ticker, dt.date.fromisoformat(settings.history_start), last_day)


def check_static_prices(src: PriceSource, spec: str, ticker: str, start: dt.date, last_day: dt.date) -> None:
    """A file's (or the synthetic source's) bars of ``ticker`` up to ``last_day``: readable, valid, and with a bar
    on ``last_day``.

    Raises:
        SourceError: missing, empty or malformed file (names the file, the line and the value).
        InvalidPricesError: the bars break a validation rule.
        FinalBarMissingError: there is no bar on ``last_day``; names the last bar the source has.
    """
    bars = src.fetch(ticker, start, last_day)
    if pd.Timestamp(last_day) not in bars.index:
        whole = src.fetch(ticker)
        newest = f"its last bar is {whole.index.max().date()}" if len(whole) else "it has no bars"
        raise FinalBarMissingError(f"{spec} has no bar for {ticker} on {last_day}: {newest} (a file never gets "
                                   "a later bar: pass an --as-of it has)")  # fmt: skip
    ensure_valid(bars)


def check_range(start: dt.date, end: dt.date) -> None:
    """A backfill range runs forward."""
    if start > end:
        raise ConfigError(f"backfill start {start} is after end {end}")
