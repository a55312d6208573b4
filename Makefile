# Switchyard. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/switchyard

.DEFAULT_GOAL := help
.PHONY: help install demo run test test-fast lint format migrations-check bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(BIN)/.installed ## Create .venv and install Switchyard with its dev tools

demo: install ## Web + worker + beat with a demo source and sample events; Ctrl-C stops (PORT=8000)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py up --demo --port $${PORT:-8000}

run: install ## Web + worker + beat without demo data; Ctrl-C stops (PORT=8000)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py up --port $${PORT:-8000}

test: install ## Lint, check migrations, then run every test against real services
	bash scripts/ensure-services
	bash scripts/ensure-browser
	$(MAKE) --no-print-directory lint migrations-check
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install ## Tests without the real-worker and chaos ones
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest -m "not worker and not chaos" $(PYTEST_ARGS)

lint: install ## ruff (lint + format check), mypy, and the import contracts (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/mypy agents_project events handlers bench
	$(BIN)/lint-imports --no-cache

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: install ## Fail if a model change has no migration
	DATABASE_URL=sqlite:///var/migrations-check.sqlite3 $(BIN)/python manage.py makemigrations --check --dry-run --settings tests.settings

bench: install ## Run the benchmarks and print ratios against the baseline
	bash scripts/ensure-services
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@command -v wrk >/dev/null 2>&1 || { echo "make bench: installing wrk"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m bench

clean: ## Remove the virtualenv and local state under var/
	rm -rf $(VENV) var
