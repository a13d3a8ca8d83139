# Two entry points a new user needs: `make demo` and `make test`.
# Each creates (once) and reuses a virtualenv for the chosen interpreter.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench legacy-table clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The suite runs on TEST_JOBS worker processes (pytest-xdist); its timing
# margins hold with both cores of a 2-core machine busy. TEST_JOBS=0 runs it
# in one process.
TEST_JOBS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check corun patches

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

# The README's table of legacy programs run plainly and under python -m corun.
legacy-table: $(STAMP)
	$(BIN)/python tests/legacy/table.py

BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/run.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/asyncio_bridge.py

clean:
	rm -rf .venv .venv-* build *.egg-info
