# `make test` and `make demo` set everything up from scratch on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# The CPU build of torch that lies on this machine's disk; a bare `torch` would
	# pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[dev]"
	# Reference corruptions for tests/benchmarks only. --no-deps: its metadata wants the
	# GUI opencv-python, which clashes with opencv-python-headless (its needs: numba, core;
	# scikit-image, [dev]).
	$(PIP) install --no-deps imagecorruptions-imaug==1.1.5
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/robustpose benchmark

bench: $(STAMP)
	$(PY) benchmarks/corruptions.py

clean:
	rm -rf $(VENV) build *.egg-info
