# One-command entry points. Every target creates or reuses the virtual environment in .venv/.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) -m local_stack
SCENARIO ?=
# `make demo MERCHANTS=2` (1 to 5): that many demo merchants from a merchants file (docs/merchants.md); empty: one
MERCHANTS ?=
# `make up EXECUTOR=celery`: Airflow on the CeleryExecutor (docs/executors.md); empty: the LocalExecutor
EXECUTOR ?=
PYTEST_ARGS ?=

RETURNS ?= 1000
SEED ?= 1
OUT ?= .local/scenarios/scenario-$(RETURNS)-$(SEED).json

.PHONY: help venv browser redis demo test chaos lint up stop warehouse warehouse-url reader-url simulate scenario bench bench-events clean

help:
	@echo "make demo           run the main job end to end on embedded defaults"
	@echo "make demo MERCHANTS=2   the same for two merchants (a merchants file), one summary each"
	@echo "make test           lint (ruff, mypy, sqlfluff), the whole test suite (unit and integration), then the fault suite"
	@echo "make browser        Debian's Chromium for the browser tests, if /usr/bin/chromium is missing (part of make test)"
	@echo "make chaos          the fault suite alone, with its tally (part of make test)"
	@echo "make bench          benchmarks at scale (about 20 minutes, and 9-13 more for the merchants part), bench/results/latest.json"
	@echo "make bench-events   300 webhook events through a local Airflow of its own (under 10 minutes), bench/results/events.json"
	@echo "make up             Airflow UI with our DAGs on http://127.0.0.1:8080 (AIRFLOW__API__PORT), login admin"
	@echo "make up EXECUTOR=celery   the same on the CeleryExecutor: its own Redis broker, two Celery workers"
	@echo "make redis          Debian's redis-server, if missing (make up EXECUTOR=celery and make test)"
	@echo "make stop           stop everything this project started"
	@echo "make warehouse-url  print a libpq connection string of the warehouse"
	@echo "make reader-url     print finance's connection string (recon_reader, read-only)"
	@echo "make simulate SCENARIO=path   serve the three API simulators (foreground)"
	@echo "make scenario RETURNS=N SEED=S OUT=path   generate a scenario with its answer key"

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml tools/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	@# the pipeline package (pyproject.toml) and the local tooling (tools/pyproject.toml), editable
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . -e ./tools
	touch $@

venv: $(VENV)/.installed

# Debian's Chromium, which the browser tests (marked browser) drive through Playwright: Playwright's own
# browser download is never used. Installed only when missing: as root, or through sudo.
CHROMIUM := /usr/bin/chromium
browser:
	@tools/bin/debian-package chromium $(CHROMIUM) "the browser tests"

# Debian's redis-server, the Celery broker of `make up EXECUTOR=celery` and of its test (the stack starts its own
# redis-server process on 127.0.0.1, never the system service). Installed only when missing: as root, or through sudo.
redis:
	@tools/bin/debian-package redis-server redis-server "the Celery broker of make up EXECUTOR=celery"

demo: venv
	$(STACK) demo --scenario "$(SCENARIO)" --merchants "$(MERCHANTS)"

test: venv lint browser redis
	$(PY) -m pytest -n 2 -m "not faults" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory chaos

# the fault suite runs serially so its tally prints (also saved to .local/fault-suite-tally.txt)
chaos: venv
	$(PY) -m pytest -m faults -p no:xdist -s -q $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check dags plugins include tools tests bench
	$(VENV)/bin/ruff format --check --quiet dags plugins include tools tests bench
	@# the SQL files (pyproject.toml [tool.sqlfluff]; the migrations applied before the linter, .sqlfluffignore)
	$(VENV)/bin/sqlfluff lint --disable-progress-bar include
	@# the type checker over the pipeline, the local tooling and the DAG files (pyproject.toml [tool.mypy])
	$(VENV)/bin/mypy

up: venv $(if $(filter celery,$(EXECUTOR)),redis)
	$(STACK) up --scenario "$(SCENARIO)" --executor "$(EXECUTOR)" --merchants "$(MERCHANTS)"

simulate: venv
	$(STACK) simulate --scenario "$(SCENARIO)"

bench: venv
	$(PY) -m bench.run

# its own local stack (free ports, .local/bench-events), stopped at the end; not part of make test
bench-events: venv
	$(PY) -m bench.events

scenario: venv
	$(PY) -m recon_simulators.generate --returns $(RETURNS) --seed $(SEED) --out $(OUT)

stop: venv
	$(STACK) stop

warehouse: venv
	$(STACK) warehouse

warehouse-url: venv
	@$(STACK) warehouse-url

reader-url: venv
	@$(STACK) reader-url

clean: stop
	rm -rf .local
