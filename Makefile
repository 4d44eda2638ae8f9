# Two commands a new machine needs (README Quickstart): `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
SHARED_CSV ?= ../shared/data/tsla_daily.csv
# Yahoo is the production source; where ../shared's CSV sits beside the repo (CI, offline machines) and no RUN_ARGS
# are given, `make run` is a demo on that file, kept in its own home so that its history never blocks a later real
# run (`make run RUN_ARGS="--source yahoo"` uses TSLA_FORECAST_HOME, default ~/.tsla-forecast).
DEMO_HOME ?= $(HOME)/.tsla-forecast-demo
DEMO_ARGS  = --source csv:$(SHARED_CSV) --as-of 2024-12-20
RUN_ARGS  ?=
# Test processes (pytest-xdist). Most tests wait on subprocesses, servers and sleeps, so 4 beat 2 on 2 cores.
TEST_WORKERS ?= 4
DEMO       = $(if $(strip $(RUN_ARGS)),,$(wildcard $(SHARED_CSV)))

.PHONY: install run test lint

# uv installs the same versions as pip from the same ranges, in a third of the time (it unpacks and byte-compiles in
# parallel: about 25 s against 65 s here, warm caches both); where it cannot install (say pip is configured for a
# private index that uv does not read), pip does.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'uv>=0.13.9,<0.14'
	$(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode -e '.[dev]' \
		|| { echo "uv could not install; installing with pip" >&2; $(PY) -m pip install --quiet -e '.[dev]'; }
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(if $(DEMO),@echo "demo on $(SHARED_CSV) in its own home $(DEMO_HOME)" >&2,)
	$(if $(DEMO),TSLA_FORECAST_HOME=$(DEMO_HOME) ,)$(VENV)/bin/tsla-forecast run $(if $(DEMO),$(DEMO_ARGS),$(RUN_ARGS))

test: $(STAMP) lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
