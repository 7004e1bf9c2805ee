# stackcoder — the two commands a new user needs are `make run` and `make test`.
.PHONY: install install-all lock system-deps extension run test lint format

PYTHON ?= python3
VENV := .venv

# The locked versions of scripts/locks/ (quick when nothing changed; llama.cpp is built for this CPU).
install:
	scripts/install.sh run

install-all:
	scripts/install.sh all

# Re-resolve pyproject.toml into scripts/locks/*.txt (exact versions with hashes); commit the result.
lock:
	scripts/lock.sh

system-deps:
	scripts/system_deps.sh

run:
	scripts/run.sh

test:
	scripts/test.sh

lint: install-all
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-all
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
