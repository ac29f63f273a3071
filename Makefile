# collect_kit — `make demo` sets everything up and runs the main job; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench bench-10m lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@bash scripts/system-deps.sh
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "collect_kit needs Python >= 3.11 (found %s)" % sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,examples,spark]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	@touch $@

demo: setup
	$(BIN)/collect-kit demo
	$(BIN)/collect-kit report run configs/reports/monthly.yaml

# the test files are shared among the cores (at most 4 workers; each file's tests and its
# fixtures stay in one worker): 11 minutes on 2 cores against 19 one file after another
test: setup
	@bash scripts/test-deps.sh
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile

bench: setup
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_foundation.py
	$(BIN)/python benchmarks/bench_segmentation.py
	$(BIN)/python benchmarks/bench_kpis.py
	$(BIN)/python benchmarks/bench_experiments.py
	$(BIN)/python benchmarks/bench_planning.py
	$(BIN)/python benchmarks/bench_discovery.py
	$(BIN)/python benchmarks/bench_report.py

# 10 M customers on this machine (about 20 GB in data/bench-10m/; never part of `make test`)
bench-10m: setup
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_10m.py all

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
