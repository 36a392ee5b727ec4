PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint format run bench clean

venv: $(STAMP)

# Reinstall only when the project metadata changes, so re-runs are quick.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test,server]'
	touch $@

test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

run: venv
	@if [ -e sample_site ] || [ -e sample_site.py ]; then \
		exec $(BIN)/python -m sample_site; \
	else \
		echo "the sample site is not built yet" >&2; exit 1; \
	fi

bench: venv
	@if [ -f bench/run.py ]; then \
		exec $(BIN)/python bench/run.py; \
	else \
		echo "the benchmark is not built yet" >&2; exit 1; \
	fi

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +
