# The front door. Each target sets up what it needs: a virtualenv in .venv with chute
# installed (editable) and its development tools. Nothing outside this folder is used.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install run test lint format clean system

install: $(STAMP)

# Debian packages that tests drive as real programs (a Prometheus that scrapes chute, the
# Chromium that tests/browser/ drives through Playwright, the tmux terminal in which
# `chute submit` draws its progress bars), installed when missing and this
# is root with apt; without them those tests are skipped, which CI (.ci/run) counts as a
# failure.
TEST_PACKAGES := prometheus chromium tmux
system:
	@missing=""; for p in $(TEST_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
		|| echo "make: could not install$$missing; the tests that drive them will be skipped"; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## make run: start chute on the embedded default (SQLite in ./var, files in /tmp/pipeline)
run: install
	$(BIN)/chute serve

## make test: every test, on SQLite and on a throw-away PostgreSQL the tests start; the
## test files are dealt to one pytest process per core (pytest-xdist; a file's tests
## stay together, so that a module's server starts once)
test: install system
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

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

.PHONY: bench bench-full

## make bench: the benchmarks (bench/README.md), each figure against a baseline of the same run
# The `bench` extra (procrastinate, profilers) is installed once per pyproject.toml: its stamp
# is one of the install target's, so a change of pyproject.toml installs it again. wrk comes
# from Debian's packages; without it (no root, no apt) the Python load generator is used.
bench: install
	test -f $(STAMP).bench || { $(BIN)/python -m pip install --quiet -e '.[bench]' && touch $(STAMP).bench; }
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk) \
		|| echo "bench: wrk is not available; the Python load generator stands in"
	$(BIN)/python -m bench $(BENCH_ARGS)

## make bench-full: the same, with 1,000,000-row lists and a 1 GiB upload
bench-full:
	$(MAKE) bench BENCH_ARGS="--full $(BENCH_ARGS)"

.PHONY: fuzz

## make fuzz: the fuzz tests of `make test` (tests/e2e/test_fuzz.py) at length, on the memory
## adapters and on SQLite: 500 generated requests per API operation (besides schemathesis's
## examples and coverage cases) and 500 upload bodies per property, instead of 25, and 50
## requests with NUL or a lone surrogate in each place a request carries text, instead of 2.
## A few minutes. FUZZ_EXAMPLES and FUZZ_SEED change the count and the seed (runs of one seed repeat).
FUZZ_EXAMPLES ?= 500
FUZZ_SEED ?= 20261129
fuzz: install
	CHUTE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CHUTE_FUZZ_SEED=$(FUZZ_SEED) \
		$(BIN)/python -m pytest tests/e2e/test_fuzz.py $(PYTEST_ARGS)

.PHONY: screenshots

## make screenshots: the console's overview, job list and job page as PNG in docs/images,
## taken in Chromium from a server with a sample of jobs (tests/browser/test_screenshots.py)
screenshots: install system
	CHUTE_SCREENSHOTS=docs/images $(BIN)/python -m pytest tests/browser/test_screenshots.py $(PYTEST_ARGS)
