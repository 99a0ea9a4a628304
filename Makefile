# leakguard developer commands. `make run` and `make test` are the two README commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint bench bench-relay bench-relay-all fuzz fuzz-mass clean docs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Run the relay on its embedded default: SMTP on 127.0.0.1:2525 (loopback trusted),
# review pages on http://127.0.0.1:8025, SQLite and a local maildir under ./leakguard-data.
# Other ports:  make run LISTEN=127.0.0.1:2626 WEB_LISTEN=127.0.0.1:8126
# Any flag:     make run ARGS="--upstream smtp.example.jp:587 --log-level debug"
# A config:     LEAKGUARD_CONFIG=/etc/leakguard/leakguard.yaml make run  (or ARGS="-c FILE")
LISTEN ?=
WEB_LISTEN ?=
ARGS ?=
run: setup
	$(BIN)/leakguard serve $(if $(LISTEN),--listen $(LISTEN)) $(if $(WEB_LISTEN),--web-listen $(WEB_LISTEN)) $(ARGS)

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check leakguard tests bench
	$(BIN)/ruff format --check leakguard tests bench
	$(BIN)/mypy

# Regenerate what is generated from the code (a test fails when it is stale).
docs: setup
	$(BIN)/leakguard config reference -o docs/configuration.md

bench: setup
	$(BIN)/python bench/engine_bench.py

# The relay against the protocol ceiling (smtp-sink) and a private Postfix relay, issue 11's
# whole matrix in one run (needs root and the Debian package postfix; niced, the machine is
# shared). Other cases / extra serve flags:
#   make bench-relay BENCH_RELAY_ARGS="--cases 5k,held --sessions 20,1 --lg-args '--workers 2'"
# bench-relay-all adds the cost curves (size, recipients) and the memory runs.
BENCH_RELAY_ARGS ?= --full
bench-relay: setup
	nice $(BIN)/python bench/relay/compare.py $(BENCH_RELAY_ARGS)

bench-relay-all: bench-relay
	nice $(BIN)/python bench/relay/curves.py
	nice $(BIN)/python bench/relay/memory.py

# The long fuzz run (CI runs a bounded one inside `make test`): FUZZ_EXAMPLES mutated mails
# through the decision and every later content step, each within its budget.
FUZZ_EXAMPLES ?= 5000
fuzz: setup
	LEAKGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/fuzz

# The mass run (issue 12): FUZZ_MASS_COUNT seeded mutations of the examples and bombs
# (add ARGS="--corpora DIR" for evaluation mails) in FUZZ_JOBS niced worker processes.
FUZZ_MASS_COUNT ?= 10000
FUZZ_JOBS ?= 1
fuzz-mass: setup
	nice -n 15 $(BIN)/python bench/fuzz_mass.py --count $(FUZZ_MASS_COUNT) --jobs $(FUZZ_JOBS) $(ARGS)

clean:
	rm -rf $(VENV) leakguard-data .pytest_cache .mypy_cache .ruff_cache
