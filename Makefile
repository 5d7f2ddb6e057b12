# The README's two commands: `make run` and `make test`. Nothing else is needed on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install trainers run test lint typecheck demo bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned to the local CPU build, so nothing later pulls a CUDA wheel.
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

# The trainers' own reward code (verl, OpenRLHF) for tests/trainers: their CPU-side imports with
# the constraints, the trainers themselves without their GPU dependencies (see the files).
TRAINERS := $(VENV)/.trainers-installed
$(TRAINERS): $(STAMP) tests/trainers/requirements.txt tests/trainers/requirements-nodeps.txt
	$(BIN)/python -m pip install -q -c constraints.txt -r tests/trainers/requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r tests/trainers/requirements-nodeps.txt
	touch $(TRAINERS)

trainers: $(TRAINERS)

run: install
	$(BIN)/mentor-reward serve

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

test: install $(TRAINERS)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/mentor-train demo

bench: install
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
