# Two commands a new machine needs (README Quickstart): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
SHARED_CSV = ../shared/data/tsla_daily.csv
# Yahoo is the production source; where ../shared's CSV sits beside the repo (CI, offline machines) the demo uses it.
RUN_ARGS ?= $(if $(wildcard $(SHARED_CSV)),--source csv:$(SHARED_CSV) --as-of 2024-12-20,)

.PHONY: install run test lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tsla-forecast run $(RUN_ARGS)

test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
