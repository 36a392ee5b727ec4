PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint format run bench clean

# The JavaScript client of the e2e tests (tests/e2e/js): npm ci reruns only when the lock file is
# newer than the install, whose own lock file (node_modules/.package-lock.json) is the stamp.
JS_DIR := tests/e2e/js
JS_STAMP := $(JS_DIR)/node_modules/.package-lock.json

venv: $(STAMP)

# Reinstall only when the project metadata changes, so re-runs are quick.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test,server]'
	touch $@

test: lint $(JS_STAMP)
	$(BIN)/python -m pytest
	$(BIN)/python tests/run_services.py

# Without npm and node the JavaScript e2e tests skip themselves (and fail when CI is set).
$(JS_STAMP): $(JS_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then \
		npm ci --prefix $(JS_DIR) && touch $@; \
	else \
		echo "node/npm not installed: the JavaScript e2e tests will be skipped" >&2; \
	fi

# ruff, mypy, and the import-linter contracts of pyproject.toml (docs/architecture.md).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

run: venv
	$(BIN)/python -m sample_site

# The benchmark (bench/run.py --help): make bench, or e.g. make bench BENCH_ARGS=--quick;
# make bench BENCH_ARGS=--write-path-only runs only the write-path table (bench/write_path.py).
bench: venv
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +
