# The two commands: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := -c constraints.txt

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg constraints.txt
	$(PIP) install --quiet $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet $(CONSTRAINTS) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/physml demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/neighbours.py
	$(BIN)/python benchmarks/scatter.py
	$(BIN)/python benchmarks/gns_step.py
	$(BIN)/python benchmarks/calo_generation.py
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/jets.py
	$(BIN)/python benchmarks/mgn_step.py

clean:
	rm -rf $(VENV) runs
