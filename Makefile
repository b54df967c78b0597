# One set of commands for developers, the README and CI.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: install lint test demo bench reliability clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is installed first, pinned, so pip keeps the CPU build (unpinned it pulls CUDA).
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests integrations examples
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest -q

demo: install
	$(PY) examples/quickstart.py

bench: install
	$(PY) tests/benchmarks/run.py

reliability: install
	$(BIN)/pytest -q -m reliability --reliability-long tests/reliability

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
