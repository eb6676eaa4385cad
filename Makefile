# `make run` starts the bot, `make test` runs every check CI runs. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench soak clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m bot

lint: install
	$(VENV)/bin/ruff check bot tests bench fakes
	$(VENV)/bin/ruff format --check bot tests bench fakes
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

bench: install
	command -v redis-server >/dev/null || { echo "bench needs redis-server (apt-get install redis-server)"; exit 1; }
	$(PY) -m bench.run

soak: install
	SOAK=1 $(VENV)/bin/pytest -q -s -n 0 tests/test_replicas.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
