# The README's two commands: `make run` and `make test`. Both set up everything
# they need on a fresh machine (a .venv with pinned versions; Debian packages
# for the peer tests when running as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest debian-test-deps aladin-lite bench clean

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

run: $(STAMP) aladin-lite
	$(BIN)/alvo serve

# Aladin Lite for the labelling page's sky panel (npm, pinned in service/web/sky.py),
# into ~/.cache/alvo; offline, the panel says it is missing and the page works on.
aladin-lite: $(STAMP)
	@$(BIN)/python -c "from service.web.sky import install_aladin_lite as i; print('aladin-lite:', i())" \
	  || echo "aladin-lite: not fetched (no npm or offline): the sky panel will say so"

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

test: $(STAMP) debian-test-deps aladin-lite lint typecheck pytest

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
