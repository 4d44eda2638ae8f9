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

# INSTALLER=uv (the default) installs with uv 0.13: the versions pip picks from the same ranges (checked here with
# `pip freeze`), in about 27 s against pip's 65 s on this machine (uv unpacks and byte-compiles in parallel). uv reads
# neither pip.conf nor PIP_* variables: it installs from PyPI (or UV_INDEX_URL). Where uv cannot be installed or
# cannot install, pip does; `make install INSTALLER=pip` uses pip, and its configuration, from the start.
INSTALLER ?= uv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if [ "$(INSTALLER)" = uv ] && $(PY) -m pip install --quiet 'uv>=0.13,<0.14' \
		&& $(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode -e '.[dev]'; then :; \
	else \
		if [ "$(INSTALLER)" = uv ]; then echo "uv could not install; installing with pip" >&2; fi; \
		$(PY) -m pip install --quiet -e '.[dev]'; \
	fi
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
