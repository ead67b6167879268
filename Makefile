# llmlab — the two commands a learner needs: `make lab` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.llmlab-installed
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
export LLMLAB_HOME ?= $(HOME)/.cache/llmlab
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: lab test setup fetch exercises check-exercises bench doctor clean classroom classroom-test

## setup: create .venv and install the pinned packages (again only when constraints.txt, pyproject.toml or this Makefile change)
setup: $(STAMP)

$(STAMP): constraints.txt pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: llmlab needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]" 2>&1 | grep -v "neither a file nor a directory"; \
		exit $${PIPESTATUS[0]}
	@# offline classrooms: no "get notified about Jupyter news?" prompt, no fetch of the news feed
	@$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyterlab/apputils-extension:announcements \
		>/dev/null 2>&1
	@touch $(STAMP)

## fetch: make sure the model is in $(LLMLAB_HOME) (verifies checksums; downloads only if needed)
fetch: $(STAMP)
	@HF_HUB_OFFLINE=0 $(PY) -m llmlab fetch

## lab: set up, then open JupyterLab on the notebooks
lab: fetch
	$(PY) -m llmlab doctor || true
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(ROOT_FLAG) notebooks/00_setup_and_tour.ipynb $(LAB_ARGS)

## test: set up, then run everything (lint, exercise sync, unit tests, notebooks, check-can-fail tests)
test: fetch
	$(PY) -m llmlab build-exercises --check
	$(VENV)/bin/ruff check .
	LLMLAB_BLOCK_NETWORK=1 $(PY) -m pytest tests notebooks solutions --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 -p no:cacheprovider $(PYTEST_ARGS)

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
exercises: $(STAMP)
	$(PY) -m llmlab build-exercises

## bench: run the benchmarks and print their tables
bench: fetch
	$(PY) -m llmlab bench

doctor: $(STAMP)
	$(PY) -m llmlab doctor

## clean: remove the virtual environment (the model cache in $(LLMLAB_HOME) is kept)
clean:
	rm -rf $(VENV)
