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

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check tunebench tests benchmarks
	$(VENV)/bin/lint-imports

## the speed benchmarks under benchmarks/ (print their figures)
bench: $(VENV)/.dev-installed
	$(PY) benchmarks/scheduler_overhead.py
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/local_backend_throughput.py
	$(PY) benchmarks/tuner_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
