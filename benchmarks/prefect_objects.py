"""What one ticker costs the Prefect server: API calls by route and rows by table, per extra ticker.

Starts a Prefect server (``prefect server start``, its own PREFECT_HOME and port, its access log on), then runs the
real CLI against it (its tasks in its own process: no Dask), once with ``--small`` and once with ``--large`` new
tickers:
``tsla-forecast -q run --as-of 2024-12-31 --source csv:TSLA_CSV --ticker ...``, each ticker day 1 (a full fit,
forecast, store and report). After each run it waits for the server's event consumers to flush, then counts the
server's access-log lines by method and route and the rows of its SQLite tables. The difference between the two
runs, divided by the extra tickers, is what one more ticker adds: the fixed part of a run (the flow run, its
states, the run summary's artifacts) drops out. These are counts, not timings, so one run of each size is enough.
Events reach the server over a websocket, so they show in its ``events`` table, not in its access log.

    python benchmarks/prefect_objects.py                 # 1 and 4 tickers (about a minute)
    python benchmarks/prefect_objects.py --large 8
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import SHARED_CSV, write_json  # noqa: E402
from benchmarks.scale import AS_OF, BIN, QUIET, start_prefect_server, stop_process  # noqa: E402

TABLES = ("flow_run", "flow_run_state", "task_run", "task_run_state", "log", "artifact", "events", "event_resources")
REQUEST = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (\S+) HTTP')
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FLUSH_S = 8.0  # the server's event persister and task-run recorder flush every 5 s


def rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608 - fixed names


def requests(log: Path) -> collections.Counter[str]:
    """Access-log lines by method and route (ids replaced by ``{id}``, query strings dropped)."""
    found: collections.Counter[str] = collections.Counter()
    for line in log.read_text().splitlines():
        if m := REQUEST.search(line):
            found[f"{m.group(1)} {UUID.sub('{id}', m.group(2).split('?')[0])}"] += 1
    return found


def run(tickers: list[str], env: dict[str, str], home: Path) -> float:
    """One ``tsla-forecast -q run`` of ``tickers``; returns its wall time."""
    cmd = [str(BIN / "tsla-forecast"), "-q", "run", "--as-of", str(AS_OF), "--source", f"csv:{SHARED_CSV}"]
    for t in tickers:
        cmd += ["--ticker", t]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env | {"TSLA_FORECAST_HOME": str(home)}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"tsla-forecast run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1, help="tickers in the first run (default 1)")
    parser.add_argument("--large", type=int, default=4, help="tickers in the second run (default 4)")
    parser.add_argument("--name", default="prefect_objects", help="JSON name under benchmarks/results")
    args = parser.parse_args()
    if not SHARED_CSV.exists():
        raise SystemExit(f"benchmark needs {SHARED_CSV}")
    if args.large <= args.small:
        raise SystemExit("--large must be more than --small")

    base = Path(tempfile.mkdtemp(prefix="prefect-objects-"))
    server, url = start_prefect_server(base, {"PREFECT_SERVER_LOGGING_LEVEL": "INFO"})  # access log: a line per call
    env = os.environ | QUIET | {"PREFECT_API_URL": url, "PREFECT_HOME": str(base / "client-prefect")}
    db, log = base / "prefect-server" / "prefect.db", base / "prefect-server.log"
    counts: dict[int, dict[str, Any]] = {}
    try:
        for n in (args.small, args.large):
            rows_before, requests_before = rows(db), requests(log)
            wall = run([f"N{n}T{i}" for i in range(n)], env, base / f"home-{n}")
            time.sleep(FLUSH_S)
            rows_after, requests_after = rows(db), requests(log)
            counts[n] = {"wall_s": round(wall, 1),
                         "rows": {t: rows_after[t] - rows_before[t] for t in TABLES},
                         "requests": dict(requests_after - requests_before)}  # fmt: skip
            print(f"{n} ticker(s), {wall:.1f} s: rows {counts[n]['rows']}; API calls {counts[n]['requests']}")
    finally:
        stop_process(server)
    extra = args.large - args.small
    small, large = counts[args.small], counts[args.large]
    per_ticker = {
        "rows": {t: round((large["rows"][t] - small["rows"][t]) / extra, 2) for t in TABLES},
        "requests": {
            k: round((large["requests"].get(k, 0) - small["requests"].get(k, 0)) / extra, 2)
            for k in sorted(set(large["requests"]) | set(small["requests"]))
        },  # fmt: skip
    }
    print(f"\nper extra ticker: rows {per_ticker['rows']}")
    print(f"per extra ticker: API calls { {k: v for k, v in per_ticker['requests'].items() if v} }")
    path = write_json(args.name, {"as_of": str(AS_OF), "runs": {str(k): v for k, v in counts.items()},
                                  "per_extra_ticker": per_ticker})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
