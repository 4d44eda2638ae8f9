"""Model artefacts in the database: the archive size per version, and the load time from the database vs the cache.

For ``default`` and ``seed000`` a model is fitted once (one epoch: the size does not depend on training) on the real
TSLA data (synthetic without it), packed and registered with its archive in SQLite and in PostgreSQL (when
reachable). "from the database" is a cold load on a worker with an empty cache: read the blob, verify its sha256,
unpack it into the cache, verify the folder and load it with Keras. "from the cache" is every later load: verify the
cached folder against its sha256 and load it. Medians of ``--repeats`` loads.

    python benchmarks/artifacts.py          # ~1 min
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import SHARED_CSV, load_tsla, new_postgres_database, write_json  # noqa: E402

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _prices():
    if SHARED_CSV.exists():
        return load_tsla(until="2024-12-19"), "tsla_daily.csv"
    from forecaster.data.sources import generate_prices

    return generate_prices(seed=0, n=3000, start="2012-01-03"), "synthetic"


def _databases(tmp: Path, pg_url: str | None) -> dict[str, str]:
    urls = {"sqlite": f"sqlite:///{tmp / 'forecast.db'}"}
    if (pg := new_postgres_database(pg_url, "tsla_artifacts")) is not None:
        urls["postgresql"] = pg
    return urls


def _median_ms(action, repeats: int, before=None) -> float:
    times = []
    for _ in range(repeats):
        if before:
            before()
        start = time.perf_counter()
        action()
        times.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(times), 1)


def _timings(repo, row, settings, repeats: int) -> dict[str, float]:
    """Median milliseconds of each way to get a loaded model from a registered version."""
    from flows.jobs.bundles import cached_bundle, load_version

    def clear() -> None:
        shutil.rmtree(settings.cache_dir, ignore_errors=True)

    return {
        "read_blob_ms": _median_ms(lambda: repo.artifact_data(row.id), repeats),
        "cold_fill_ms": _median_ms(lambda: cached_bundle(repo, row, settings), repeats, before=clear),
        "load_from_database_ms": _median_ms(lambda: load_version(repo, row, settings), repeats, before=clear),
        "verify_cached_ms": _median_ms(lambda: cached_bundle(repo, row, settings), repeats),
        "load_from_cache_ms": _median_ms(lambda: load_version(repo, row, settings), repeats),
    }


def measure(preset_name: str, prices, urls: dict[str, str], tmp: Path, repeats: int) -> dict:
    from db import migrate
    from db.repository import NewModelVersion, Repository
    from flows.jobs.bundles import artifact_hint
    from flows.settings import Settings
    from forecaster.models.lstm import LSTMForecaster
    from forecaster.models.networks import pack_model
    from forecaster.models.presets import get_preset

    model = LSTMForecaster(get_preset(preset_name).replace(epochs=1), horizon=5).fit(prices)
    start = time.perf_counter()
    data, sha = pack_model(model)
    pack_ms = round(1000 * (time.perf_counter() - start), 1)
    out = {"preset": preset_name, "n_params": int(model.model_.count_params()), "archive_bytes": len(data),
           "pack_ms": pack_ms, "backends": {}}  # fmt: skip
    for backend, url in urls.items():
        migrate.upgrade(url)
        repo = Repository.from_url(url)
        settings = Settings(home=tmp / f"{backend}-{preset_name}", database_url=url)
        with repo.transaction() as tx:
            version = NewModelVersion("TSLA", "full", None, preset_name, {}, dt.date(2024, 1, 2),
                                      dt.date(2024, 12, 19), {}, artifact_hint(sha), sha)  # fmt: skip
            vid = tx.add_model_version(version, artifact=data)
        out["backends"][backend] = _timings(repo, repo.model_version(vid), settings, repeats)
        print(preset_name, backend, f"{len(data) / 1e6:.2f} MB", out["backends"][backend])
        repo.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="default,seed000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pg-url", default=os.environ.get("TSLA_FORECAST_TEST_POSTGRES_URL", PG_DEFAULT))
    args = parser.parse_args()
    prices, data_name = _prices()
    tmp = Path(tempfile.mkdtemp(prefix="bench-artifacts-"))
    urls = _databases(tmp, args.pg_url)
    results = [measure(p, prices, urls, tmp, args.repeats) for p in args.presets.split(",")]
    path = write_json("artifacts", {"data": data_name, "repeats": args.repeats, "results": results,
                                    "load_average": [round(x, 2) for x in os.getloadavg()]})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
