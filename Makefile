# Two entry points a new user needs: `make demo` and `make test`.
# Each creates (once) and reuses a virtualenv for the chosen interpreter.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test compile lint typecheck check bench legacy-table clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The optional compiled core (setup.py, mypyc), built in place next to the
# sources for this interpreter and rebuilt when one of its modules changes.
# Without mypyc or a C compiler the build says so and the pure-Python modules
# run; CORUN_PURE_PYTHON=1 runs them whatever is built (and does not stop the
# build, so that `CORUN_PURE_PYTHON=1 make test` first leaves a build for `make test`).
CORE := corun/_asyncio_state.py corun/_event.py corun/_hubbound.py corun/_hubcounts.py corun/_io_base.py corun/_io_epoll.py corun/_io_selectors.py corun/_threadsync.py corun/_waiter.py corun/_waitqueue.py corun/greenlet.py corun/hub.py \
	corun/lock.py corun/queue.py corun/_stackcache.c
COMPILED := $(VENV)/.compiled
$(COMPILED): $(STAMP) setup.py $(CORE)
	$(BIN)/python -m pip install --quiet 'setuptools>=77'
	rm -rf build/corun build/.mypyc-cache  # mypyc reuses what it cached even where build options changed
	MYPY_CACHE_DIR=build/.mypyc-cache CORUN_COMPILE=1 CORUN_PURE_PYTHON= $(BIN)/python setup.py -q build_ext --inplace \
		|| echo "== the compiled core was not built; the pure-Python modules run"
	touch $@

compile: $(COMPILED)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The suite runs on TEST_JOBS worker processes (pytest-xdist); its timing
# margins hold with both cores of a 2-core machine busy. TEST_JOBS=0 runs it
# in one process.
TEST_JOBS ?= 2

test: $(STAMP) $(COMPILED)
	$(BIN)/python -c 'import corun; print("== corun core:", "compiled" if corun.COMPILED else "pure Python")'
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

bench: $(BENCH_VENV)/.installed $(COMPILED)
	$(BENCH_VENV)/bin/python bench/run.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/asyncio_bridge.py

clean:
	rm -rf .venv .venv-* build *.egg-info corun/*.so
