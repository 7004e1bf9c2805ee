# stackcoder — the two commands a new user needs are `make run` and `make test`.
.PHONY: install system-deps extension run test lint format

PYTHON ?= python3
VENV := .venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	scripts/install.sh
	touch $@

system-deps:
	scripts/system_deps.sh

run:
	scripts/run.sh

test:
	scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
