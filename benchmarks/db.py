"""Storage benchmark: fill SQLite and PostgreSQL with ~250k forecasts, time the bulk insert and the README recipes.

    python benchmarks/db.py                           # both backends, JSON to benchmarks/results/db.json
    python benchmarks/db.py --docs docs/querying.md   # also regenerate the "Querying the history" section

Fill: 10 years of business days x 5 horizons x 20 model versions (a fine-tune lineage), all live forecasts.
Recipe timings are medians of ``--repeats`` runs after one warm-up, rows fetched. PostgreSQL runs in a fresh
uniquely named database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import migrate  # noqa: E402
from db.engine import make_engine, redact  # noqa: E402
from db.recipes import RECIPES, Recipe  # noqa: E402
from db.repository import NewModelVersion, Repository  # noqa: E402

TICKER = "TSLA"
HORIZONS = 5
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def synthetic_prices(days: int, seed: int) -> pd.DataFrame:
    """A seeded random walk around 200 in the standard price frame layout."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2015-01-02", periods=days, name="date")
    close = 200 * np.exp(np.cumsum(rng.normal(0.0003, 0.03, days)))
    return pd.DataFrame(
        {"open": close * 0.999, "high": close * 1.02, "low": close * 0.98, "close": close, "volume": 1e7},
        index=index,
    )


def forecast_frame(prices: pd.DataFrame, origins: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Forecasts for ``HORIZONS`` days ahead from each origin position: a slightly informed random guess."""
    close = prices["close"].to_numpy()
    origin = np.repeat(origins, HORIZONS)
    horizon = np.tile(np.arange(1, HORIZONS + 1), len(origins))
    last = close[origin]
    realised = np.log(close[origin + horizon] / last)
    point = last * np.exp(0.3 * realised + rng.normal(0, 0.028 * np.sqrt(horizon)))
    sigma = last * 0.03 * np.sqrt(horizon)
    return pd.DataFrame(
        {
            "as_of": prices.index[origin], "horizon": horizon, "target_date": prices.index[origin + horizon],
            "naive": last, "point": point, "lo80": point - 1.2816 * sigma, "hi80": point + 1.2816 * sigma,
            "lo95": point - 1.96 * sigma, "hi95": point + 1.96 * sigma,
        }
    )  # fmt: skip


def fill_example(repo: Repository, days: int = 120, seed: int = 7) -> None:
    """A realistic small live history: daily runs, weekly full retrains, daily fine-tunes, two failures."""
    rng = np.random.default_rng(seed)
    prices = synthetic_prices(days + HORIZONS, seed)
    parent: int | None = None
    for pos in range(40, days):
        as_of = prices.index[pos].date()
        run_id = repo.start_run("daily", TICKER, as_of)
        if pos in (57, 88):
            repo.fail_run(run_id, "SourceError: yahoo returned an empty frame for TSLA (2 retries)")
            continue
        with repo.transaction() as uow:
            uow.upsert_prices(TICKER, prices.iloc[: pos + 1], "synthetic")
            kind = "full" if parent is None or pos % 5 == 0 else "finetune"
            parent = uow.add_model_version(NewModelVersion(
                TICKER, kind, None if kind == "full" else parent, "default", {"units": 64, "window": 60},
                prices.index[0].date(), as_of, {"val_rmse": round(float(rng.uniform(4, 6)), 3)},
                f"models/v{pos}", "0" * 64, status="champion",
            ))  # fmt: skip
            uow.upsert_forecasts(run_id, parent, TICKER, forecast_frame(prices, np.array([pos]), rng))
            uow.finish_run(run_id, model_version_id=parent)
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices.iloc[: days + 1], "synthetic")


def fill_benchmark(repo: Repository, years: int, versions: int, seed: int = 0) -> dict[str, float]:
    """Fill ``years`` x 252 days x 5 horizons x ``versions`` forecasts; returns timings and row counts."""
    rng = np.random.default_rng(seed)
    days = years * 252
    prices = synthetic_prices(days, seed)
    frames = [forecast_frame(prices, np.arange(days - HORIZONS), rng) for _ in range(versions)]
    run_ids = [repo.start_run("daily", TICKER, prices.index[-1 - i].date()) for i in range(versions)]  # one per key
    start = time.perf_counter()
    with repo.transaction() as uow:
        uow.upsert_prices(TICKER, prices, "synthetic")
    parent = None
    for run_id, frame in zip(run_ids, frames, strict=True):
        with repo.transaction() as uow:
            kind = "full" if parent is None else "finetune"
            parent = uow.add_model_version(NewModelVersion(
                TICKER, kind, parent, "default", {}, prices.index[0].date(), prices.index[-1].date(), {},
                "models/v", "0" * 64, status="champion",
            ))  # fmt: skip
            uow.upsert_forecasts(run_id, parent, TICKER, frame)
            uow.finish_run(run_id, model_version_id=parent)
    insert_s = time.perf_counter() - start
    for i in range(50):
        repo.fail_run(repo.start_run("daily", TICKER, prices.index[-1 - i].date()), f"failure {i}")
    start = time.perf_counter()
    with repo.transaction() as uow:  # the same rows again: an idempotent no-op
        uow.upsert_forecasts(run_ids[-1], parent, TICKER, frames[-1])
    rewrite_s = time.perf_counter() - start
    with repo.engine.connect() as conn:
        rows = int(conn.scalar(sa.text("SELECT count(*) FROM forecasts")) or 0)
    with repo.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return {"forecast_rows": rows, "insert_s": insert_s, "insert_rows_per_s": rows / insert_s,
            "rewrite_one_version_s": rewrite_s}  # fmt: skip


def run_recipe(engine: sa.Engine, recipe: Recipe) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one recipe and fetch every row."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql(recipe.sql)
        return list(result.keys()), [tuple(r) for r in result]


def time_recipes(engine: sa.Engine, repeats: int) -> dict[str, float]:
    """Median milliseconds of each recipe over ``repeats`` runs after one warm-up."""
    medians = {}
    for recipe in RECIPES:
        run_recipe(engine, recipe)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            run_recipe(engine, recipe)
            samples.append((time.perf_counter() - start) * 1000)
        medians[recipe.name] = statistics.median(samples)
    return medians


@contextmanager
def backend_url(backend: str, postgres_admin: str) -> Iterator[str]:
    """A fresh migrated database: an SQLite file in a temp dir, or a uniquely named PostgreSQL database."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tsla-bench-") as folder:
            url = f"sqlite:///{Path(folder) / 'forecast.db'}"
            migrate.upgrade(url)
            yield url
        return
    admin = sa.create_engine(postgres_admin, isolation_level="AUTOCOMMIT")
    name = f"tsla_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        url = make_url(postgres_admin).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def benchmark(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fill one backend and time it."""
    with backend_url(backend, args.postgres) as url:
        repo = Repository(make_engine(url))
        fill = fill_benchmark(repo, args.years, args.versions)
        recipes = time_recipes(repo.engine, args.repeats)
        repo.dispose()
    print(f"{backend}: {fill['forecast_rows']} rows in {fill['insert_s']:.1f} s; recipes (ms) {recipes}")
    return {"url": redact(url), **fill, "recipe_median_ms": recipes}


def example_outputs(args: argparse.Namespace) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Run every recipe on the small example history on both backends; check they agree; return SQLite's."""
    outputs: dict[str, dict[str, Any]] = {}
    for backend in args.backends:
        with backend_url(backend, args.postgres) as url:
            repo = Repository(make_engine(url))
            fill_example(repo)
            outputs[backend] = {r.name: run_recipe(repo.engine, r) for r in RECIPES}
            repo.dispose()
    first, *others = outputs.values()
    for other in others:
        for name, (_, rows) in first.items():
            if name != "failed_runs" and _normalise(rows) != _normalise(other[name][1]):
                raise SystemExit(f"recipe {name} gives different rows on the two backends")
    return first


def _normalise(rows: list[tuple[Any, ...]]) -> list[tuple[str, ...]]:
    return [tuple(_cell(v) for v in row) for row in rows]


def _cell(value: Any) -> str:
    if isinstance(value, float | Decimal):
        return f"{float(value):.6g}"
    return "NULL" if value is None else str(value)


def render_table(columns: list[str], rows: list[tuple[Any, ...]], limit: int = 8) -> str:
    """A psql-style text table of the first ``limit`` rows."""
    cells = [[_cell(v) for v in row] for row in rows[:limit]]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    if len(rows) > limit:
        lines.append(f"... ({len(rows)} rows)")
    return "\n".join(line.rstrip() for line in lines)


DOCS_INTRO = """## Querying the history

Every price, model version, run, forecast and metric lives in one database: by default the SQLite file
`$TSLA_FORECAST_HOME/forecast.db` (`~/.tsla-forecast/forecast.db`), or whatever `TSLA_FORECAST_DATABASE_URL` names
(for PostgreSQL, `postgresql+psycopg://user@host:5432/dbname`). Create or migrate it with `tsla-forecast db upgrade`,
then open it with `sqlite3 ~/.tsla-forecast/forecast.db` or `psql`.

Tables: `prices` (one bar per ticker and date), `model_versions` (lineage through `parent_id`; at most one
`champion` per ticker, enforced by a partial unique index), `runs` (`running` -> `succeeded`/`failed`/`skipped`, with
the error text), `forecasts` (`scope` `live` or `backtest`; `model` `lstm` or a baseline; `naive` is the last close
at `as_of`) and `metrics`. The view `forecast_outcomes` joins each forecast to the realised close on its target date:
`actual`, `error` (actual - point), `abs_error`, `naive_error`, `naive_abs_error`, `direction_hit` (1 when the
forecast got the direction of the move from the last close right), and `in80`/`in95` (1 when the close fell inside
the interval). Flags are integers, so `AVG(...)` gives a rate. Dates are ISO `YYYY-MM-DD`; timestamps are UTC.

The recipes below run unchanged on SQLite (3.35 or newer) and PostgreSQL. `SQRT` is built into PostgreSQL and into
SQLite builds with math functions; where it is missing, `tsla-forecast` registers it on its own connections, and
with the `sqlite3` shell you need a build with math functions. The example outputs come from
`python benchmarks/db.py --docs docs/querying.md` on a small synthetic history (both backends return the same rows).
"""


def render_docs(examples: dict[str, tuple[list[str], list[tuple[Any, ...]]]], results: dict[str, Any]) -> str:
    """The markdown page: the intro, each recipe with its SQL and example output, and the benchmark table."""
    parts = [DOCS_INTRO]
    for recipe in RECIPES:
        columns, rows = examples[recipe.name]
        parts.append(f"### {recipe.title}\n\n{recipe.description}\n\n```sql\n{recipe.sql};\n```\n")
        parts.append(f"```text\n{render_table(columns, rows)}\n```\n")
    parts.append(_benchmark_section(results))
    return "\n".join(parts)


def _benchmark_section(results: dict[str, Any]) -> str:
    backends = results["backends"]
    fill = results["fill"]
    header = "| | " + " | ".join(backends) + " |\n|---|" + "---:|" * len(backends)
    values = list(backends.values())
    inserts = [f"{b['insert_s']:.1f} s ({b['insert_rows_per_s']:,.0f} rows/s)" for b in values]
    rewrites = [f"{b['rewrite_one_version_s'] * 1000:.0f} ms" for b in values]
    lines = [
        f"| bulk insert of {values[0]['forecast_rows']:,} forecasts | " + " | ".join(inserts) + " |",
        "| rewrite 12.6k identical forecasts (no-op upsert) | " + " | ".join(rewrites) + " |",
    ]
    for recipe in RECIPES:
        medians = [f"{b['recipe_median_ms'][recipe.name]:.1f} ms" for b in backends.values()]
        lines.append(f"| {recipe.title} | " + " | ".join(medians) + " |")
    machine = results["machine"]
    return (
        "### How fast\n\n"
        f"`python benchmarks/db.py` fills each backend with {fill['years']} years x {fill['horizons']} horizons x "
        f"{fill['versions']} model versions of live forecasts and times the recipes (median of repeated runs, rows "
        f"fetched). Measured {results['when'][:10]} on {machine['cpus']} CPU cores, Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, PostgreSQL 15 on the same machine.\n\n" + header + "\n" + "\n".join(lines) + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark, write JSON (and the docs page)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=os.environ.get("TSLA_FORECAST_TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "db.json")
    parser.add_argument("--docs", type=Path, help="write the 'Querying the history' markdown page here")
    args = parser.parse_args(argv)
    results = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "sqlite": _sqlite_version()},
        "fill": {"years": args.years, "horizons": HORIZONS, "versions": args.versions},
        "backends": {backend: benchmark(backend, args) for backend in args.backends},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.docs:
        args.docs.write_text(render_docs(example_outputs(args), results))
        print(f"wrote {args.docs}")


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    main()
