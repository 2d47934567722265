# The front door. Each target sets up what it needs: a virtualenv in .venv with chute
# installed (editable) and its development tools. Nothing outside this folder is used.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install run test lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## make run: start chute on the embedded default (SQLite in ./var, files in /tmp/pipeline)
run: install
	$(BIN)/chute serve

## make test: every test, on SQLite and on a throw-away PostgreSQL the tests start
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make lint: ruff, and mypy --strict on every layer
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf .lint && mkdir -p .lint/chute
	for layer in domain application adapters entrypoints; do ln -s ../../$$layer .lint/chute/$$layer; done
	cd .lint && ../$(BIN)/mypy --strict -p chute.domain -p chute.application -p chute.adapters -p chute.entrypoints

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .lint build dist *.egg-info .pytest_cache var
