# The README's two commands: `make run` and `make test`. Both set up everything
# they need on a fresh machine (a .venv with pinned versions; Debian packages
# for the peer tests when running as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest debian-test-deps bench clean

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[test,postgres]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/alvo serve

debian-test-deps:
	bash tests/peers/install-debian-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check service uws tests benchmarks
	$(BIN)/ruff format --check service uws tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: $(STAMP) debian-test-deps lint typecheck pytest

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
