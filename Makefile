# The README's two commands: `make run` and `make test`. Nothing else is needed on a fresh machine.
PYTHON ?= python3
# Another folder for a separate environment: `make run VENV=/tmp/mentor-venv`.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where the service listens for `make run` (it binds 127.0.0.1 only).
PORT ?= 8000
# pip takes torch from its configured indexes. From PyPI on Linux x86-64 that is the CUDA build
# (with several GB of NVIDIA libraries); on a machine without an NVIDIA GPU, point this at
# PyTorch's CPU wheel index instead (see the README's "Install" section).
TORCH_INDEX ?=

.PHONY: install trainers browser run test lint typecheck demo bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned, so that the training stack below never pulls a second build of it.
	$(BIN)/python -m pip install -q -c constraints.txt $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==2.13.0
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

# The service alone: the `server` extra (no torch, no training stack), in the same venv.
# uv (from PyPI, put into the venv by this Python's own pip) installs it several times faster than
# pip, and its venv needs no pip of its own (ensurepip alone costs ~8 s of CPU). pip does it all when
# uv cannot be had or fails; `make run INSTALLER=pip` forces pip. uv reads UV_INDEX_URL /
# UV_EXTRA_INDEX_URL, not pip's configuration.
INSTALLER ?= uv
SERVER_STAMP := $(VENV)/.server-installed
$(SERVER_STAMP): pyproject.toml
	@if [ "$(INSTALLER)" = uv ] && { test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV); } \
		&& UV=$$(command -v uv || { $(PYTHON) -m pip --python $(BIN)/python install -q uv >&2 && echo $(BIN)/uv; }) \
		&& $$UV pip install -q --python $(BIN)/python -e ".[server]"; then \
		echo "installed the server extra with uv"; \
	else \
		echo "installing the server extra with pip"; \
		$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q -e ".[server]"; \
	fi
	touch $(SERVER_STAMP)

run: $(SERVER_STAMP)
	@echo "MENTOR reward service on http://127.0.0.1:$(PORT)  (API docs: http://127.0.0.1:$(PORT)/docs; Ctrl-C stops it)"
	@echo "Once it logs 'Application startup complete', try in another shell:"
	@echo "  curl -s http://127.0.0.1:$(PORT)/v1/presets"
	$(BIN)/mentor-reward serve --port $(PORT)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

# Debian's Chromium for the browser tests (tests/browser; Playwright drives it, never a browser
# of its own): installed once, as root, when it is missing; anything else stops here and says why.
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) \
		|| { echo "the browser tests need Chromium: run 'apt-get install -y chromium' as root" >&2; exit 1; }

test: install $(TRAINERS) browser
	command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q postgresql)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/mentor-train demo

bench: install
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
