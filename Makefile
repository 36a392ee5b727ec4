PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test matrix lint format run bench soak clean

# The JavaScript client of the e2e tests (tests/e2e/js): npm ci reruns only when the lock file is
# newer than the install, whose own lock file (node_modules/.package-lock.json) is the stamp.
JS_DIR := tests/e2e/js
JS_STAMP := $(JS_DIR)/node_modules/.package-lock.json

venv: $(STAMP)

# Reinstall only when the project metadata changes, so re-runs are quick.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test,server,docs]'
	touch $@

# The version matrix of noxfile.py (nox -l lists its sessions): Python 3.10-3.13 from pyenv,
# Django 5.2 and 6.1, redis-py 7 and 8. Its venvs in .nox are reused; nox never downloads an
# interpreter, and skips the sessions of a missing one (they fail when CI is set).
NOX := $(BIN)/nox --reuse-venv=yes --download-python never
# What make test runs of it: every interpreter with the newest Django it supports, the default
# (in-memory) suite less the e2e tests, which the default interpreter ran above; the session of
# the default interpreter's own Python and Django (e.g. 3.11-5.2) is skipped, as it just ran.
MATRIX_SLICE := -t newest -- -m "not e2e"
COVERED := import sys, django; print("%d.%d-%d.%d" % (*sys.version_info[:2], *django.VERSION[:2]))

test: lint docs $(JS_STAMP)
	$(BIN)/python -m pytest
	$(BIN)/python tests/run_services.py
	SMS_MATRIX_COVERED="$$($(BIN)/python -c '$(COVERED)')" $(NOX) $(MATRIX_SLICE)

# Every session of the matrix: the whole default suite on each Python and Django, and the
# services configuration (PostgreSQL, both Redis layers) with redis-py 7 and with 8.
matrix: venv $(JS_STAMP)
	$(NOX)

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
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e '.[test,server,docs,bench]'
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The soak (bench/soak.py): 1,000 subscribers on two servers for SOAK_MINUTES (30: the "Soak"
# section of bench/RESULTS.md and bench/soak.png; shorter runs only print), e.g.
# make soak SOAK_MINUTES=3. Not part of make test.
SOAK_MINUTES ?= 30
soak: $(BENCH_STAMP)
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

# The documentation site (mkdocs.yml, docs/): mkdocs build --strict into site/ (gitignored).
.PHONY: docs

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +
