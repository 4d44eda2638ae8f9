"""``tsla-forecast sine``: the seed002 sine-wave experiment, its loss table, ``sine.json`` and ``sine.png``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer

from forecaster.models.sine import run_sine
from forecaster.plots.figures import plot_actual_vs_predicted, save_figure


def run_sine_command(epochs: int, output: Path) -> None:
    """Train, print the per-epoch table and the test score, and write the summary and figure to ``output``."""
    result = run_sine(epochs)
    typer.echo(f"{'epoch':>5}  {'loss':>11}  {'val_loss':>11}")
    for i, (loss, val) in enumerate(zip(result.loss, result.val_loss, strict=True), start=1):
        typer.echo(f"{i:>5}  {loss:>11.4e}  {val:>11.4e}")
    typer.echo(f"test MSE {result.test_mse:.4e}  RMSE {result.test_rmse:.4e}  ({len(result.actual)} points)")
    output.mkdir(parents=True, exist_ok=True)
    summary = {"loss": result.loss, "val_loss": result.val_loss, "test_mse": result.test_mse,
               "test_rmse": result.test_rmse}  # fmt: skip
    (output / "sine.json").write_text(json.dumps(summary, indent=2))
    fig = plot_actual_vs_predicted(
        pd.Series(result.actual), pd.Series(result.predicted), title="LSTM prediction on the sine wave (test set)"
    )
    save_figure(fig, output / "sine.png")
    typer.echo(f"wrote {output / 'sine.json'} and {output / 'sine.png'}")
