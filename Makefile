# Two set-up commands for a fresh machine with Python 3.11-3.13 and pip:
#   make demo   -> creates .venv, installs torch + multiviz, runs the main analysis
#                  (shipped PBMC CITE-seq cells + simulated Patch-seq; offline, ~75 s of CPU)
#   make test   -> same bootstrap, then the test suite
# GPU users: create .venv yourself and install your CUDA build of torch into it first
# (`python -m venv .venv && .venv/bin/pip install torch ...` as pytorch.org says for your CUDA);
# the bootstrap keeps any torch it finds.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
DATA ?=
OUT ?= demo_output
BIN := $(VENV)/bin

.PHONY: demo test docs lint bench structure clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.installed-doc: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,doc]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m multiviz demo --out $(OUT) $(if $(DATA),--data $(DATA))

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests $(wildcard benchmarks)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks)

structure: $(VENV)/.installed
	$(BIN)/python benchmarks/structure/structure.py

docs: $(VENV)/.installed-doc
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf docs/_build docs/api/generated $(OUT)
