# Set-up and the two everyday jobs. Each target creates the virtual environment
# first if it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: baseline test test-all setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The main job: the baseline scenario, with plots, under results/baseline/<run-id>/.
baseline: $(STAMP)
	$(BIN)/mpsim run baseline

# The test suite (slow statistical tests included).
test: $(STAMP)
	$(BIN)/python -m pytest
