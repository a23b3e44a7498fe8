# emovox: `make run` installs into .venv and runs the main job; `make test` installs and runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EMOVOX_CORPORA ?= ../shared/corpora
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install install-dev run test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.torch: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	touch $@

install: $(VENV)/.torch
	$(BIN)/pip install -q -e ".[deep,onnx,vad,serve]"

install-dev: $(VENV)/.torch
	$(BIN)/pip install -q -e ".[dev,deep,whisper,onnx,vad,serve,ray,text]"

run: install
	$(BIN)/emovox demo --out runs/demo

test: install-dev
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check src tests bench

bench: install
	$(BIN)/python bench/bench_features.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
