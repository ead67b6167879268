# llmlab — the two commands a learner needs: `make lab` and `make test`.
# setup, fetch, lab and test call the Python entry points a learner without make uses (python3.11 -m llmlab
# setup | lab | test, in llmlab/kit/launch.py: standard library only, so $(PYTHON) runs them before .venv exists).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
LAB_ARGS ?=
# the same settings llmlab/kit/launch.py gives what it starts (OFFLINE_ENV; tests/test_cli.py checks they agree)
export LLMLAB_HOME ?= $(HOME)/.cache/llmlab
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: lab test setup fetch python exercises check-exercises bench doctor clean classroom classroom-test

python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: llmlab needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }

## setup: create .venv and install the pinned packages (again only when constraints.txt or pyproject.toml change)
setup: python
	@$(PYTHON) -m llmlab setup --no-fetch

## fetch: set up, and make sure the model is in $(LLMLAB_HOME) (verifies checksums; downloads only if needed)
fetch: python
	@$(PYTHON) -m llmlab setup

## lab: set up, then open JupyterLab on the notebooks (as root it adds --allow-root; LAB_ARGS go to jupyter lab)
lab: python
	$(PYTHON) -m llmlab lab -- $(LAB_ARGS)

## test: set up, then run everything (lint, exercise sync, unit tests, notebooks, check-can-fail tests)
test: python
	$(PYTHON) -m llmlab test -- $(PYTEST_ARGS)

CHP := classroom/.node/node_modules/.bin/configurable-http-proxy

$(CHP):
	@command -v npm >/dev/null || { echo "npm not found: JupyterHub's proxy needs Node.js (apt-get install nodejs npm)"; exit 1; }
	cd classroom && npm install --no-audit --no-fund --prefix .node configurable-http-proxy@5.3.0 >/dev/null

## classroom: run the workshop JupyterHub (one JupyterLab per learner; see classroom/jupyterhub_config.py)
classroom: fetch $(CHP)
	$(VENV)/bin/jupyterhub -f classroom/jupyterhub_config.py

## classroom-test: start that hub on loopback with simulated learners and check each one's results
classroom-test: fetch $(CHP)
	LLMLAB_BLOCK_NETWORK=1 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest classroom/tests -p no:cacheprovider -s

## exercises: regenerate exercises/ from solutions/
exercises: setup
	$(PY) -m llmlab build-exercises

## bench: run the benchmarks and print their tables
bench: fetch
	$(PY) -m llmlab bench

doctor: setup
	$(PY) -m llmlab doctor

## clean: remove the virtual environment (the model cache in $(LLMLAB_HOME) is kept)
clean:
	rm -rf $(VENV)
