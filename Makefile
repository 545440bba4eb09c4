# make run  : set up (.venv) and run the single-process clearing scenario on LevelDB
# make test : set up (.venv) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench genesis lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/clearchain scenario --home .devnet/solo --reset

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
	rm -rf $(VENV) .devnet .pytest_cache .hypothesis
