# The README's two commands: `make run` and `make test`. Both set up everything
# they need on a fresh machine (a .venv with pinned versions; Debian packages
# for the peer tests when running as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest debian-test-deps bench clean

# The editable install maps each package it found at install time: a package
# added or removed later must reinstall, or an old mapping shadows it. The list
# is kept in a file that is rewritten (and so newer than the stamp) only when
# the set of packages changes.
PACKAGE_LIST := $(VENV)/.packages
PACKAGES := $(sort $(shell find service uws -name __init__.py -not -path '*/__pycache__/*'))
$(shell mkdir -p $(VENV) && { [ "$$(cat $(PACKAGE_LIST) 2>/dev/null)" = "$(PACKAGES)" ] || echo "$(PACKAGES)" > $(PACKAGE_LIST); })

$(STAMP): pyproject.toml requirements/constraints.txt $(PACKAGE_LIST)
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
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: $(STAMP) debian-test-deps lint typecheck pytest

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
