# The workbench's two front doors. Both set up everything on a fresh machine:
#   make demo   -- the whole chain end to end on the embedded default (synthetic data, tiny model)
#   make test   -- unit tests + notebook checks (pytest --nbval, runs and data made afresh in a temp folder), what CI runs
# The dependency list lives in pyproject.toml; the torch/torchvision pins are read from it.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.muva-installed
TORCH_PINS := $(shell grep -oE '"torch(vision)?==[^"]+"' pyproject.toml | tr -d '"')
# the pose backend's model runtime, installed without its dependencies (see the pose extra in pyproject.toml)
MEDIAPIPE := $(shell grep -m1 -oE 'mediapipe==[0-9.]+' pyproject.toml)
# OpenCV's pedestrian clip (Debian opencv-doc), the source of the real-image track's crops
VTEST := /usr/share/doc/opencv-doc/examples/data/vtest.avi
# the browser test's Chromium (Debian chromium; Playwright points at it, its own download is unreachable here)
CHROMIUM := /usr/lib/chromium/chromium
# $(call debian,PACKAGE,FILE,WHAT NEEDS IT): install PACKAGE as root where FILE is missing, else say what to install
debian = test -e $(2) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && { apt-get install -y -qq $(1) \
  || { apt-get update -qq && apt-get install -y -qq $(1); }; } >/dev/null 2>&1; } \
  || echo "setup: $(2) is missing ($(3)): install $(1) (as root: apt-get install $(1))"
PYTEST_NB := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# Two pytest-xdist workers: the notebooks run in order on one (one unit of work, notebooks/conftest.py), the unit
# tests on the other; every training in them uses one thread (the smoke preset's threads=1), so the second
# core was idle before. The notebooks generate their data in a fresh folder (MUVA_NOTEBOOK_DATA), not data/.
# One process: make test PYTEST_XDIST=
PYTEST_XDIST := -n 2
# what `make test` collects (a subset on the command line: make test TESTS=tests/test_eval.py)
TESTS := tests $(wildcard notebooks/*.ipynb)

.PHONY: demo test setup notebooks clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $(MEDIAPIPE) \
	  || echo "setup: $(MEDIAPIPE) did not install (it ships cp311 wheels only): the pose backend and its tests are skipped"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (muva)" >/dev/null
	@$(call debian,opencv-doc,$(VTEST),real-image track)
	@$(call debian,chromium,$(CHROMIUM),the browser test tests/test_browser.py is skipped)
	@touch $@

demo: $(STAMP)
	$(PY) -m muva_lib demo

test: $(STAMP)
	@tmp=$$(mktemp -d); mkdir $$tmp/runs $$tmp/data; MUVA_RUNS=$$tmp/runs MUVA_NOTEBOOK_DATA=$$tmp/data \
	$(PY) -m pytest -q --durations=15 $(PYTEST_XDIST) $(TESTS) $(PYTEST_NB); rc=$$?; \
	rm -rf $$tmp; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): failing" >&2; exit 1; fi; \
	exit $$rc

# Regenerate the committed notebook outputs (nbval's reference) from the percent-format sources.
# Runs go to a fresh folder, as under `make test`, so the outputs are those CI will compare against.
notebooks: $(STAMP)
	@runs=$$(mktemp -d); cd notebooks && for f in [0-9]*.py; do \
	MUVA_RUNS=$$runs ../$(VENV)/bin/jupytext --sync --execute "$$f" || { rm -rf $$runs; exit 1; }; done; \
	rm -rf $$runs
	$(VENV)/bin/python -m muva_lib.notebook_runs strip-widgets notebooks/[0-9]*.ipynb  # explorers' widget state: not committed

clean-venv:
	rm -rf $(VENV)
