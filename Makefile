# Two commands: `make demo` runs the pipeline in Airflow on a generated batch,
# `make test` runs lint, type checks and the whole test suite. `make airflow` starts a real
# Airflow (UI on 127.0.0.1:$(AIRFLOW_PORT)) on the same metadata database; `make airflow-stop` stops it. Both install what they
# need: uv into .tools/, then the locked environment into .venv/. `make check` is the fast
# loop while editing: lint, type checks and the tests not marked integration, slow, postgres,
# airflow_stack or distributed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
TOOLS := $(CURDIR)/.tools
UV := $(TOOLS)/bin/uv
BIN := $(CURDIR)/.venv/bin
export UV_PYTHON_DOWNLOADS := never
export LOOKBACK_DATA_DIR ?= $(CURDIR)/data

DEMO_BATCH := demo
DEMO_LANDING := $(LOOKBACK_DATA_DIR)/landing/$(DEMO_BATCH)
DEMO_OUT := $(LOOKBACK_DATA_DIR)/runs/$(DEMO_BATCH)
DEMO_TRUTH := $(LOOKBACK_DATA_DIR)/truth/$(DEMO_BATCH)
DEMO_AS_OF := 2020-06-30
DEMO_LOG := $(LOOKBACK_DATA_DIR)/airflow-demo.log
# The demo's second look-back of its batch, left waiting at the release approval.
DEMO_SECOND_RUN := {"batch": "$(DEMO_BATCH)", "run_id": "$(DEMO_BATCH)-review", "out": "$(DEMO_OUT)-review", \
	"as_of": "$(DEMO_AS_OF)", "optional_grace_minutes": 0}
# Airflow on its own SQLite metadata database, with this project's DAGs only. The home, the
# API server's port and the log servers' ports can be moved (a test does, to stay off the
# user's .airflow/ and 8080): make airflow LOOKBACK_AIRFLOW_HOME=/tmp/x AIRFLOW_PORT=8090
LOOKBACK_AIRFLOW_HOME ?= $(CURDIR)/.airflow
AIRFLOW_PORT ?= 8080
AIRFLOW_WORKER_LOG_PORT ?= 8793
AIRFLOW_TRIGGER_LOG_PORT ?= 8794
AIRFLOW_PARALLELISM ?= 4
AIRFLOW_STACK := $(BIN)/python $(CURDIR)/scripts/airflow_stack.py --home $(LOOKBACK_AIRFLOW_HOME) \
	--port $(AIRFLOW_PORT) --data-dir $(LOOKBACK_DATA_DIR) \
	--worker-log-server-port $(AIRFLOW_WORKER_LOG_PORT) --trigger-log-server-port $(AIRFLOW_TRIGGER_LOG_PORT) \
	--parallelism $(AIRFLOW_PARALLELISM)
AIRFLOW_ENV := AIRFLOW_HOME=$(LOOKBACK_AIRFLOW_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins AIRFLOW__CORE__LOAD_EXAMPLES=False

# Tests run on pytest-xdist workers, one per core; a module's tests stay on one worker, so
# module-scoped fixtures (a pipeline run, the DAG's four Airflow runs) are made once.
# `make test PYTEST_XDIST=` (or check) runs them in one process.
PYTEST_XDIST ?= -n auto --dist loadscope
FAST_TESTS := not integration and not slow and not postgres and not airflow_stack and not distributed

.PHONY: install bench-env demo airflow airflow-stop airflow-status test check lint typecheck pytest format clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI, containers) no
# process would write it, and each would compile Great Expectations', scipy's and Airflow's
# sources afresh (about 14 s of CPU for every process that imports Great Expectations).
$(BIN)/lookback: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --compile-bytecode --python $(PYTHON)
	touch $@

install: $(BIN)/lookback

# splink and what it brings (DuckDB, pyarrow) for the benchmarks that compare with it, in an
# environment of their own: pyarrow in .venv would change pandas' string storage under
# lookback's own stages and so the figures measured for the environment `make install` makes.
.venv-bench/bin/python: $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/.venv-bench $(UV) sync --locked --group bench --compile-bytecode --python $(PYTHON)
	touch $@

bench-env: .venv-bench/bin/python

demo: install
	@rm -rf $(DEMO_LANDING) $(DEMO_TRUTH) $(LOOKBACK_DATA_DIR)/warehouse.sqlite $(LOOKBACK_DATA_DIR)/warehouse.sqlite-*
	@echo "generating a demo batch (noise profile hard) ..."
	@$(BIN)/lookback --quiet generate --out $(DEMO_LANDING) --persons 300 --seed 2020 --as-of $(DEMO_AS_OF) --noise hard
	@mkdir -p $(LOOKBACK_DATA_DIR)
	@echo "preparing Airflow's metadata database ($(LOOKBACK_AIRFLOW_HOME)) ..."
	@$(AIRFLOW_ENV) $(BIN)/airflow db migrate > $(DEMO_LOG) 2>&1
	@$(AIRFLOW_ENV) $(BIN)/airflow dags reserialize >> $(DEMO_LOG) 2>&1
	@$(AIRFLOW_ENV) $(BIN)/airflow pools set cpu_heavy 1 "county tasks; one at a time on the SQLite warehouse" >> $(DEMO_LOG) 2>&1
	@$(AIRFLOW_ENV) $(BIN)/airflow pools set staged_announcements 1 "staged assets announced one at a time" >> $(DEMO_LOG) 2>&1
	@# Paused while the demo runs its own reconciliation, so that a running scheduler does not start a second one.
	@$(AIRFLOW_ENV) $(BIN)/airflow dags pause reconcile >> $(DEMO_LOG) 2>&1
	@echo "running the ingest DAGs and the reconciliation in Airflow, the release approved (log: $(DEMO_LOG)) ..."
	@$(AIRFLOW_ENV) $(BIN)/python scripts/run_dags.py dags --batch $(DEMO_LANDING) --out $(DEMO_OUT) \
		--as-of $(DEMO_AS_OF) >> $(DEMO_LOG) 2>&1 \
		|| { tail -n 40 $(DEMO_LOG); echo "the Airflow run failed; see $(DEMO_LOG)"; exit 1; }
	@grep "^RESULT" $(DEMO_LOG) | sed 's/^RESULT {"dag_id": "\([a-z_]*\)", "state": "\([a-z]*\)".*/  DAG \1: \2/'
	@$(AIRFLOW_ENV) $(BIN)/airflow dags trigger reconcile --conf '$(DEMO_SECOND_RUN)' >> $(DEMO_LOG) 2>&1
	@$(AIRFLOW_ENV) $(BIN)/airflow dags unpause reconcile >> $(DEMO_LOG) 2>&1
	@echo
	@$(BIN)/lookback --quiet accounting --batch $(DEMO_BATCH)
	@$(BIN)/lookback --quiet summary --out $(DEMO_OUT)
	@echo "landing batch:    $(DEMO_LANDING)"
	@echo "its truth:        $(DEMO_TRUTH) (for lookback evaluate)"
	@echo "warehouse:        $(LOOKBACK_DATA_DIR)/warehouse.sqlite"
	@echo "run files:        $(DEMO_OUT)"
	@(cd $(DEMO_OUT) && find . -type f -not -path './data_docs/*' | sed 's|^\./||' | sort | sed 's/^/                    /')
	@echo "quality report:   $(DEMO_OUT)/data_docs/index.html (Great Expectations Data Docs)"
	@grep -o "quality, stage [a-z]*, batch $(DEMO_BATCH):.*warnings" $(DEMO_LOG) | sed 's/^/                  /' || true
	@echo "Airflow home:     $(LOOKBACK_AIRFLOW_HOME) (SQLite metadata database: the demo's runs, logs and asset events; make airflow shows them)"
	@echo "second run:       reconcile of batch $(DEMO_BATCH) (look-back $(DEMO_BATCH)-review) queued; with make airflow"
	@echo "                  running it stops at approve_release for the bureau to answer"
	@echo "Airflow log:      $(DEMO_LOG)"

# Scheduler, DAG processor, triggerer and API server in the background (LocalExecutor, the
# SQLite metadata database of make demo); logs and pid files in $(LOOKBACK_AIRFLOW_HOME)/stack/.
# Returns once the API server answers; a second call finds it running and starts nothing.
airflow: install
	@$(AIRFLOW_STACK) start

airflow-stop:
	@$(AIRFLOW_STACK) stop

airflow-status:
	@$(AIRFLOW_STACK) status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest $(PYTEST_XDIST)

test: lint typecheck pytest

check: lint typecheck
	$(BIN)/pytest -q $(PYTEST_XDIST) -m "$(FAST_TESTS)"

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .venv .venv-bench .tools .airflow data .mypy_cache .pytest_cache .ruff_cache
