# make run  : set up (.venv), start the local 4-validator network, and run the demo on it
# make test : set up (.venv) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run stop test test-fast bench genesis vectors docs lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/clearchain net up --dir .devnet/net
	$(BIN)/clearchain demo --dir .devnet/net

stop: $(STAMP)
	$(BIN)/clearchain net down --dir .devnet/net

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Everything that starts no process and opens no socket (the io marker, tests/io_guard.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not io"

bench: $(STAMP)
	$(BIN)/clearchain bench executor

# Rewrite genesis.json after a contract changes (its code hash is pinned there).
genesis: $(STAMP)
	$(BIN)/clearchain genesis dev --out genesis.json

# Rewrite docs/vectors/ after a rule changes (tests/test_conformance.py checks them against the code).
vectors: $(STAMP)
	$(BIN)/clearchain vectors --out docs/vectors

# Rewrite the generated parts of docs/ (argument schemas, contract parameters) after a schema or a
# parameter changes (tests/test_docgen.py checks them against the code).
docs: $(STAMP)
	$(BIN)/python -m cli.docgen --write

LINT_STAMP := $(VENV)/.lint-stamp
$(LINT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(LINT_STAMP)

# ruff (lint and format) over the tree, mypy over every package and --strict over the pure core.
lint: $(LINT_STAMP)
	$(BIN)/ruff check chain contracts node cli tests
	$(BIN)/ruff format --check chain contracts node cli tests
	$(BIN)/mypy chain contracts node cli
	$(BIN)/mypy --strict chain contracts

clean:
	-test -x $(BIN)/clearchain && $(BIN)/clearchain net down --dir .devnet/net
	rm -rf $(VENV) .devnet .pytest_cache .hypothesis
