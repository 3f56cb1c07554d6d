# Two commands matter: `make demo` and `make test`. Both set up what they need
# (a virtualenv in .venv with the pinned stack, and eSpeak NG) on first use only.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= results/demo
PYTEST_ARGS ?=

.PHONY: setup system-deps demo calibrate test test-all lint clean

setup: $(STAMP) system-deps

# Reinstalls only when a requirements file or setup.py changes.
$(STAMP): requirements.txt requirements-dev.txt setup.py pyproject.toml
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	@echo "Installing the pinned stack into $(VENV) (first run downloads PyTorch, several GB)..."
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

system-deps:
	@bash tools/ensure_system_deps.sh

# The sparse fine-tuning paper's Tables II-IV and Fig. 3 on the tiny synthetic corpus.
demo: setup
	$(PYTHON) tools/reproduce.py --preset tiny --out $(DEMO_OUT)

# The benchmark's calibration table (source vs zero-shot vs scratch vs vanilla).
calibrate: setup
	$(PYTHON) tools/calibrate.py --out results/calibration

test: setup
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest -m "not slow" -q $(PYTEST_ARGS)

test-all: setup
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf results build dist *.egg-info
