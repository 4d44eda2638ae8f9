"""Catch-up: the sessions a daily run must replay first because earlier scheduled runs never happened.

Prefect does not run missed cron slots (a worker that was down for three days leaves three holes). Before it runs
``as_of``, the ``daily-forecast`` flow asks :func:`missed_sessions` which sessions lie between each ticker's last
succeeded daily run and ``as_of`` without a succeeded run, and replays them oldest first through the same per-ticker
task (:func:`replay`), so each replayed day writes exactly the rows it would have written on time. More than
``catchup_max_sessions`` missed sessions is a job for ``backfill``: the run fails with one line saying so.
Plain functions, no Prefect.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

from db.repository import Repository
from flows.settings import Settings
from forecaster.data.calendar import sessions
from forecaster.errors import ConfigError

logger = logging.getLogger("flows.jobs.catchup")
RUN_KIND = "daily"


def missed_sessions(repo: Repository, tickers: Iterable[str], as_of: dt.date, limit: int) -> list[tuple[dt.date, str]]:
    """``(session, ticker)`` pairs to replay before ``as_of``, oldest first.

    A ticker without any succeeded daily run before ``as_of`` has nothing to catch up (its first run starts the
    history). Sessions after the last succeeded run have, by definition, none.

    Raises:
        ConfigError: a ticker misses more than ``limit`` sessions (the message gives the backfill command).
    """
    missed: list[tuple[dt.date, str]] = []
    for ticker in tickers:
        last = repo.latest_run(RUN_KIND, ticker, until=as_of - dt.timedelta(days=1))
        if last is None:
            continue
        days = [d.date() for d in sessions(last.as_of + dt.timedelta(days=1), as_of - dt.timedelta(days=1))]
        if len(days) > limit:
            raise ConfigError(
                f"{ticker} missed {len(days)} sessions since its last succeeded daily run on {last.as_of}, more than "
                f"catchup_max_sessions={limit}: run `tsla-forecast backfill --ticker {ticker} --start {days[0]} "
                f"--end {days[-1]}` first"
            )
        missed += [(day, ticker) for day in days]
    return sorted(missed)


def find_missed(tickers: Iterable[str], as_of: dt.date, settings: Settings | None = None) -> list[tuple[dt.date, str]]:
    """:func:`missed_sessions` on the configured database, bounded by ``catchup_max_sessions``."""
    settings = settings or Settings()
    repo = Repository.from_url(settings.db_url)
    try:
        return missed_sessions(repo, tickers, as_of, settings.catchup_max_sessions)
    finally:
        repo.dispose()


def replay(missed: list[tuple[dt.date, str]], run_one: Callable[[str, dt.date], dict],
           into: list[dict] | None = None) -> list[dict]:  # fmt: skip
    """Run each missed ``(session, ticker)`` in order with ``run_one(ticker, session)``; the first failure raises
    (a later day must not run before an earlier one: models only go forward in time). Results get ``caught_up`` and
    are appended to ``into`` as they come, so a caller still has the days done before a failure."""
    results = [] if into is None else into
    for day, ticker in missed:
        logger.info("%s %s: catching up a missed session", ticker, day)
        results.append(run_one(ticker, day) | {"caught_up": True})
    return results
