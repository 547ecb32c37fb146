# Meiye — the two commands a person needs are `make run` and `make test`.
# Everything they need is installed into .venv/ (Python, from requirements.lock) and node_modules/
# (front-end libraries, from package-lock.json) on first use and again whenever the lock files change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
VAR_DIR := $(or $(MEIYE_VAR_DIR),var)
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run serve test test-fast test-browser lint format audit bench lock clean

help:
	@echo "make run           set up, migrate, load demo data (first time), serve http://$(HOST):$(PORT)"
	@echo "make test          the whole suite (unit, integration, browser) on SQLite, or on DATABASE_URL"
	@echo "make test-fast     the suite without browser tests"
	@echo "make test-browser  only the browser tests (Debian chromium at /usr/bin/chromium)"
	@echo "make lint          ruff, ruff format --check, mypy, import-linter, makemigrations --check"
	@echo "make audit         pip-audit over requirements.lock (AUDIT_STRICT=1 fails on un-auditable packages)"
	@echo "make bench         benchmarks under benchmarks/: checkout (HTTP and in process), loyalty jobs, bonus instalments, package expiry"
	@echo "                   (LOYALTY_BENCH_ARGS / INSTALMENTS_BENCH_ARGS / PACKAGES_BENCH_ARGS=--quick for a short run)"

$(VENV)/.installed: requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

var/.dir:
	@mkdir -p var
	@touch $@

setup: $(VENV)/.installed node_modules/.installed var/.dir
	@$(MANAGE) compilemessages_py --verbosity 0

run: setup
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) migrate --noinput --verbosity 0
	@if [ ! -f $(VAR_DIR)/.demo-loaded ]; then \
		echo "Loading the demo chain (first run only)…"; \
		$(MANAGE) seed_demo && touch $(VAR_DIR)/.demo-loaded; \
	fi
	@echo ""
	@echo "  Meiye front desk: http://$(HOST):$(PORT)/"
	@echo "  Demo accounts (password meiye-demo-2026): front1 (前台 receptionist), manager1 (店长),"
	@echo "  beauty1 (美容师), finance (财务), admin (总部管理员 HQ admin). API docs: http://$(HOST):$(PORT)/api/docs/"
	@echo ""
	$(MANAGE) runserver $(HOST):$(PORT)

test: test-fast test-browser

test-fast: setup
	$(PY) -m pytest -m "not browser" -q

test-browser: setup
	$(PY) -m pytest -m browser tests/browser -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings.test $(MANAGE) makemigrations --check --dry-run

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

audit: setup
	$(VENV)/bin/pip-audit -r requirements.lock --no-deps --disable-pip --progress-spinner off $(if $(AUDIT_STRICT),--strict,)

bench: setup
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(PY) benchmarks/inprocess.py --backend sqlite
	$(PY) benchmarks/inprocess.py --backend postgresql
	$(PY) benchmarks/loyalty.py $(LOYALTY_BENCH_ARGS)
	$(PY) benchmarks/instalments.py $(INSTALMENTS_BENCH_ARGS)
	$(PY) benchmarks/packages_expiry.py $(PACKAGES_BENCH_ARGS)

# Regenerate requirements.lock from pyproject.toml (run after changing a dependency).
lock:
	rm -rf var/lockenv && mkdir -p var && $(PYTHON) -m venv var/lockenv
	$(PYTHON) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
		print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > var/direct-requirements.txt
	var/lockenv/bin/pip install --quiet -r var/direct-requirements.txt
	var/lockenv/bin/pip freeze > requirements.lock
	rm -rf var/lockenv var/direct-requirements.txt

clean:
	rm -rf $(VENV) node_modules static_root var/test.sqlite3*
