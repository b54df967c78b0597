# One set of commands for developers, the README and CI.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: install chromium lint test demo inspect screenshots bench reliability clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is installed first, pinned, so pip keeps the CPU build (unpinned it pulls CUDA).
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP) chromium

# The browser tests drive Debian's chromium (Playwright's own browser download needs the
# network); installed with apt-get when missing (as root, or through sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: install
	$(BIN)/ruff check src tests integrations examples
	$(BIN)/mypy

# Two pytest workers, each taking whole test modules (module fixtures stay in one process):
# most tests wait on subprocesses, servers and disk, so two workers on two cores take about
# two thirds of one worker's time. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: install lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

demo: install
	$(PY) examples/quickstart.py

# The web inspector on the quickstart's store (made by `make demo`, or here when missing).
inspect: install
	@[ -d context.lance ] || $(PY) examples/quickstart.py
	$(BIN)/lance-context serve context.lance

# Run the browser tests and copy the README's screenshots into docs/.
screenshots: install
	$(BIN)/pytest -q tests/inspector
	cp .artifacts/screenshots/conversation.png docs/inspector-conversation.png
	cp .artifacts/screenshots/timeline.png docs/inspector-timeline.png

bench: install
	$(PY) tests/benchmarks/run.py

reliability: install
	$(BIN)/pytest -q -m "reliability or long_only" --reliability-long tests/reliability tests/ray

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .artifacts
