# The two commands: `make dev` (Dagster UI on http://127.0.0.1:3000) and `make test`.
# Both create or refresh ./.venv from pyproject.toml first; only python3.11 is needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
PYTEST_ARGS ?=

.PHONY: dev test lint bench materialize backfill screenshots clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	ln -sf $(CURDIR)/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_orders.py
	$(BIN)/python benchmarks/bench_sessions.py
	$(BIN)/python benchmarks/bench_backfill.py
	$(BIN)/python benchmarks/bench_fixed_cost.py
	$(BIN)/python benchmarks/bench_batch_script.py

# The README's pictures: the browser tests (headless Debian chromium against their own
# `dagster dev`) save their screenshots straight into docs/screenshots/.
screenshots: $(STAMP)
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest \
	  orders_platform_tests/e2e/test_ui_browser.py -q -p no:cacheprovider

# e.g. make materialize PARTITION=2026-03-17
PARTITION ?= 2026-03-17
materialize: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster asset materialize -m orders_platform.definitions \
	  --select 'raw/orders,validated/orders,validated/rejected_orders,silver/orders' \
	  --partition $(PARTITION)

# e.g. make backfill START=2026-03-01 END=2026-03-30 (needs `make dev` running)
backfill: $(STAMP)
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD"; exit 2; }
	$(BIN)/python -m orders_platform.ops.backfill launch --start $(START) --end $(END) --wait

clean:
	rm -rf data .dagster_home
