"""One daily job in a process of its own, started together with others: ``python -m tests.flows.daily_job_proc URL
HOME DAY READY GO``.

The job itself (:func:`flows.jobs.daily.run_ticker`, without Prefect), as ``tsla-forecast run --as-of DAY`` runs it.
Once imported and connected, the process creates the file READY, waits for the file GO (the test creates it when
every process is ready), runs the job and prints ``RESULT: `` and its status, or the error as ``TYPE: MESSAGE``.
The test forks it from the preloaded launcher (tests/fixtures/preloaded.py), so no process pays TensorFlow's import.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from db.repository import Repository
from flows.jobs.daily import JobParams, run_ticker
from flows.settings import Settings

TIMEOUT_S = 300
MARKER = "RESULT: "


def main(url: str, home: str, day: str, ready: str, go: str) -> None:
    settings = Settings(home=Path(home), database_url=url, run_lock_timeout=TIMEOUT_S)
    params = JobParams("TSLA", dt.date.fromisoformat(day), "synthetic:3", "auto", 5, "smoke")
    try:
        with Repository.from_url(url) as repo:
            Path(ready).touch()
            deadline = time.monotonic() + TIMEOUT_S
            while not Path(go).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{go} did not appear within {TIMEOUT_S} s")
                time.sleep(0.02)
            outcome = run_ticker(params, settings, repo).status
    except Exception as exc:  # noqa: BLE001 - reported to the test on stdout
        outcome = f"{type(exc).__name__}: {exc}"
    print(f"{MARKER}{outcome}")


if __name__ == "__main__":
    main(*sys.argv[1:])
