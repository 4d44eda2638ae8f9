"""The README's SQL recipes run unchanged on both backends, and docs/querying.md shows exactly them."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.db import fill_example, run_recipe
from db.recipes import RECIPES
from db.repository import Repository

DOCS = Path(__file__).resolve().parents[2] / "docs" / "querying.md"
EXPECTED_ROWS = {"last_forecasts": 30, "rolling_rmse": 10, "coverage_by_horizon": 5, "failed_runs": 2}


@pytest.fixture
def history(repo: Repository) -> Repository:
    fill_example(repo)
    return repo


def test_every_recipe_runs_and_returns_rows(history: Repository) -> None:
    for recipe in RECIPES:
        columns, rows = run_recipe(history.engine, recipe)
        assert columns and rows, recipe.name
        if recipe.name in EXPECTED_ROWS:
            assert len(rows) == EXPECTED_ROWS[recipe.name], recipe.name


def test_lineage_recipe_walks_back_to_the_last_full_retrain(history: Repository) -> None:
    _, rows = run_recipe(history.engine, next(r for r in RECIPES if r.name == "model_lineage"))
    assert rows[0][4] == "champion" and rows[-1][3] == "full" and rows[-1][2] is None
    assert all(row[3] == "finetune" for row in rows[:-1])


def test_docs_show_every_recipe_verbatim() -> None:
    text = DOCS.read_text()
    for recipe in RECIPES:
        assert f"```sql\n{recipe.sql};\n```" in text, recipe.name
