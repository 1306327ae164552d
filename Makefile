# Two commands: `make run` (the main job) and `make test` (the whole test suite).
# Both create .venv and install what they need from the package registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TUNEBENCH_DATA ?= $(abspath ../shared/data)

.PHONY: run test test-fast lint bench clean

$(VENV)/.run-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.run-installed

## tune the mlp_digits example with ASHA on 2 workers (about a minute)
run: $(VENV)/.run-installed
	$(VENV)/bin/tunebench run

## layer check, then every test, the slow end-to-end ones included
test: $(VENV)/.dev-installed lint
	$(PY) -m pytest -q -m "slow or not slow"

## the quick tests only (what a plain `pytest` runs)
test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -q

## style, import layers, types (mypy: strict on L0-L3, settings in pyproject.toml)
lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check tunebench tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy tunebench

## every benchmark under benchmarks/ (benchmarks/run_all.py); figures printed and kept in
## benchmarks/results/<version>/. One or some: make bench BENCH="scheduler_overhead import_time";
## smaller sizes, printed only: make bench QUICK=1; more options: make bench BENCH_ARGS="--note ..."
BENCH ?=
QUICK ?=
BENCH_ARGS ?=
bench: $(VENV)/.dev-installed
	$(PY) benchmarks/run_all.py $(if $(BENCH),--only $(BENCH)) $(if $(QUICK),--quick) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
