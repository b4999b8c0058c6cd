# The two quick-start commands: `make run` and `make test`. Each builds .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean test-postgres

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev,postgres]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m sim.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: $(STAMP) lint
	scripts/install-browser.sh
	$(BIN)/pytest -q
	scripts/test-postgres.sh

bench: $(STAMP)
	$(BIN)/python bench/alert_to_air.py

clean:
	rm -rf $(VENV) var

test-postgres: $(STAMP)
	scripts/test-postgres.sh
