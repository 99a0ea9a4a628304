# leakguard developer commands. `make run` and `make test` are the two README commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint bench fuzz clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Run the relay on its embedded default: SMTP on 127.0.0.1:2525 (loopback trusted),
# review pages on http://127.0.0.1:8025, SQLite and a local maildir under ./leakguard-data.
run: setup
	$(BIN)/leakguard serve

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check leakguard tests bench
	$(BIN)/ruff format --check leakguard tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/engine_bench.py

# The long fuzz run (CI runs a bounded one inside `make test`): FUZZ_EXAMPLES mutated mails
# through the decision and every later content step, each within its budget.
FUZZ_EXAMPLES ?= 5000
fuzz: setup
	LEAKGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/fuzz

clean:
	rm -rf $(VENV) leakguard-data .pytest_cache .mypy_cache .ruff_cache
