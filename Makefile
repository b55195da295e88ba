# Entry points for a fresh machine; each creates .venv and installs the requirements first.
#   make schedule  schedules the real tasks of tests/data/rodinia_a30.txt with a pretrained agent
#                (AGENT=pretrained:<version>/<workload> picks another), searching 1 s per batch, into schedule.json; no training
#   make train   trains a float agent for a short run (writes float/trained_models/), then
#                schedules the real tasks of tests/data/rodinia_a30.txt with it into schedule.json
#   make test    runs the test suite (pytest)
#   make lint    checks the formatting and the lint rules of pyproject.toml (ruff), as CI does
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

AGENT ?= pretrained:direct_reconfig/wide_times

.PHONY: schedule train test lint

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

schedule: $(VENV)/.installed
	$(BIN)/python -m migsched schedule --model $(AGENT) --time_limit 1 --tasks tests/data/rodinia_a30.txt --out schedule.json

train: $(VENV)/.installed
	cd float && $(BIN)/python train.py --minutes 1 --N 14 --M 14 --type_tasks mix_scaling_soft --preset fast --record ../.last_run.json
	$(BIN)/python -m migsched schedule --model "$$($(BIN)/python -c 'import json; print(json.load(open(".last_run.json"))["weights"])')" \
		--tasks tests/data/rodinia_a30.txt --out schedule.json

test: $(VENV)/.installed
	$(BIN)/pytest -q --durations=10  # the slowest ten: the suite aims at 5 minutes on 2 cores

lint: $(VENV)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
