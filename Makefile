# plexzoom: `make run` starts the whole stack, `make test` checks it, `make bench` measures it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= $(or $(PLEXZOOM_PORT),8000)

.PHONY: install tools bench-tools run test lint lint-js typecheck bench clean

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

# What the tests and benchmarks drive that pip and npm cannot install: Debian's chromium (browser
# tests) and wrk (load test). As root they are installed with apt; otherwise make stops at once.
tools:
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$${missing:+ }$$missing with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "make test needs Debian's $$missing: run  sudo apt-get install -y $$missing"; exit 1; \
	fi

# The whole-slide benchmark's baseline: Debian's `vips` command (libvips built with OpenSlide).
# As root it is installed with apt; otherwise make stops at once.
bench-tools:
	@command -v vips >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing libvips-tools with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools; \
	else \
		echo "make bench needs Debian's libvips-tools: run  sudo apt-get install -y libvips-tools"; exit 1; \
	fi

run: install
	PLEXZOOM_PORT=$(PORT) $(PY) -m plexzoom.run

lint: install
	$(VENV)/bin/ruff check services tests bench deploy
	$(VENV)/bin/ruff format --check services tests bench deploy

typecheck: install
	$(VENV)/bin/mypy -p plexzoom

# The viewer's own modules (never node_modules): ESLint, then TypeScript over their JSDoc types
# (viewer/tsconfig.json; nothing is compiled, the browser loads the files as they are).
lint-js: install
	cd viewer && node_modules/.bin/eslint . && node_modules/.bin/tsc -p .

# The node unit tests are named by a glob: node 21 and later take no folder after --test.
test: install tools lint lint-js typecheck
	node --test tests/viewer/*.test.mjs
	$(PY) -m pytest

bench: install tools bench-tools
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) viewer/node_modules .mypy_cache .ruff_cache .pytest_cache
