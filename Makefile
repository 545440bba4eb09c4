# make run  : set up (.venv), start the local 4-validator network, and run the demo on it
# make test : set up (.venv) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run stop test bench genesis lint clean

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

bench: $(STAMP)
	$(BIN)/clearchain bench executor

# Rewrite genesis.json after a contract changes (its code hash is pinned there).
genesis: $(STAMP)
	$(BIN)/clearchain genesis dev --out genesis.json

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/ruff check chain contracts cli node tests
	$(BIN)/mypy chain contracts

clean:
	-test -x $(BIN)/clearchain && $(BIN)/clearchain net down --dir .devnet/net
	rm -rf $(VENV) .devnet .pytest_cache .hypothesis
