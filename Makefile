# plexzoom: `make run` starts the whole stack, `make test` checks it, `make bench` measures it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= $(or $(PLEXZOOM_PORT),8000)

.PHONY: install run test lint typecheck bench clean

install: $(VENV)/.installed viewer/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@# mypy cannot follow setuptools' editable import hook; give it the package by its name.
	mkdir -p $(VENV)/src && ln -sfn "$(CURDIR)/services" $(VENV)/src/plexzoom
	touch $@

viewer/node_modules/.installed: viewer/package.json viewer/package-lock.json
	cd viewer && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

run: install
	PLEXZOOM_PORT=$(PORT) $(PY) -m plexzoom.run

lint: install
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench

typecheck: install
	$(VENV)/bin/mypy -p plexzoom

test: install lint typecheck
	node --test tests/viewer/
	$(PY) -m pytest

bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } \
		|| { echo "make bench needs wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) viewer/node_modules .mypy_cache .ruff_cache .pytest_cache
