"""``tsla-forecast models ...``: the model registry and its stored artefacts (list, show, export, prune).

Reads the database only and never imports TensorFlow or Prefect: an exported bundle is unpacked from its archive,
and ``LSTMForecaster.load(DIR)`` opens it (plain Keras: ``keras.saving.load_model(DIR/model.keras, compile=False)``;
the quantile head's loss is ours, so compiling needs ``custom_objects=forecaster.models.networks.CUSTOM_OBJECTS``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import existing_database, fail, ticker_option

models_app = typer.Typer(
    help="The model registry and its artefacts stored in the database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextmanager
def _repository() -> Iterator[Any]:
    from db.repository import Repository
    from flows.settings import Settings

    repo = Repository.from_url(existing_database(Settings().db_url))
    try:
        yield repo
    finally:
        repo.dispose()


def _size(value: int | None) -> str:
    return "pruned" if value is None else f"{value / 1e6:.2f} MB" if value >= 1e5 else f"{value / 1e3:.1f} kB"


def _version(repo, version_id: int) -> dict[str, Any]:
    rows = repo.list_versions(version_id=version_id)
    if not rows:
        fail(f"model version {version_id} does not exist (see `tsla-forecast models list`)")
    return rows[0]


@models_app.command("list")
def list_(
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.", callback=ticker_option)] = None,
    last: Annotated[int, typer.Option(min=1, help="How many versions, newest first.")] = 30,
) -> None:
    """Model versions, newest first: what each was trained on (first..last training row), the scope it belongs to
    (live: the daily job; backtest: a stored backtest's model, never promoted) and its artefact's size (or
    'pruned'); reads no artefact."""
    with _repository() as repo:
        rows = repo.list_versions(ticker)[:last]
        configs = {r["id"]: (repo.model_version(r["id"]).config or {}) for r in rows}
    if not rows:
        typer.echo("no model versions yet")
        return
    typer.echo(f"{'id':>5} {'ticker':<8} {'kind':<9} {'status':<10} {'scope':<9} {'preset':<9} "
               f"{'trained on':<22} {'parent':>6} {'artefact':>10}  sha256")  # fmt: skip
    for r in rows:
        parent, sha = "" if r["parent_id"] is None else str(r["parent_id"]), r["artifact_sha256"][:12]
        scope, span = configs[r["id"]].get("scope", "live"), f"{r['train_start']}..{r['train_end']}"
        typer.echo(f"{r['id']:>5} {r['ticker']:<8} {r['kind']:<9} {r['status']:<10} {scope:<9} {r['preset']:<9} "
                   f"{span:<22} {parent:>6} {_size(r['size']):>10}  {sha}")  # fmt: skip


@models_app.command()
def show(version: Annotated[int, typer.Argument(help="Model version id.")]) -> None:
    """One version: lineage, data span, config, metrics and its artefact (JSON)."""
    with _repository() as repo:
        row = _version(repo, version)
        full = repo.model_version(version)
    out = {k: row[k] for k in ("id", "ticker", "kind", "parent_id", "status", "preset", "train_start", "train_end",
                               "created_at")}  # fmt: skip
    out["scope"] = (full.config or {}).get("scope", "live")
    out["artifact"] = {"sha256": row["artifact_sha256"], "stored": row["size"] is not None, "size": row["size"],
                       "path_hint": row["artifact_path"]}  # fmt: skip
    out["config"] = full.config
    out["metrics"] = {k: v for k, v in (full.metrics or {}).items() if k not in ("history", "fit_history")}
    typer.echo(json.dumps(out, indent=2, default=str))


@models_app.command()
def export(
    version: Annotated[int, typer.Argument(help="Model version id.")],
    directory: Annotated[Path, typer.Argument(help="New folder for the bundle (must not exist, or be empty).")],
) -> None:
    """Write a version's bundle (model.keras, state.joblib, metadata.json) to DIRECTORY, verified by its sha256."""
    from forecaster.models.networks import bundle_from_bytes, bytes_sha256

    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        fail(f"{directory} already exists and is not an empty folder")
    with _repository() as repo:
        row = _version(repo, version)
        data = repo.artifact_data(version)
    if data is None:
        fail(f"model version {version} has no stored artefact (pruned by retention); its registry row remains")
    if bytes_sha256(data) != row["artifact_sha256"]:
        fail(f"the stored artefact of model version {version} does not match its sha256: it is corrupt")
    if directory.exists():
        directory.rmdir()
    bundle_from_bytes(data, directory)
    typer.echo(f"model version {version} ({row['ticker']}, {row['kind']}): wrote {directory} ({_size(len(data))})")


@models_app.command()
def prune(
    keep: Annotated[
        int | None,
        typer.Option(min=0, help="Keep the newest N per ticker (default: $TSLA_FORECAST_ARTIFACT_RETENTION)."),
    ] = None,
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.", callback=ticker_option)] = None,
) -> None:
    """Delete the artefacts of versions that are neither a champion nor among the newest N of their ticker.

    Their registry rows and metrics stay. Daily runs already prune like this as they register new versions.
    """
    from flows.settings import Settings

    n = Settings().artifact_retention if keep is None else keep
    with _repository() as repo:
        pruned = repo.prune_artifacts(n, ticker)
    ids = ", ".join(map(str, pruned)) if pruned else "none"
    typer.echo(f"pruned {len(pruned)} artefact(s), keeping champions and the newest {n} per ticker: {ids}")
