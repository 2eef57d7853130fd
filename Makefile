# Every target sets up what it needs on a fresh machine: a virtual environment in
# .venv with PyTorch's CPU build installed first (an unpinned torch would pull a
# multi-GB CUDA build), then this package with its test and docs extras.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0

.PHONY: demo test docs benchmark clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/captum-bilinear demo --out demo.png

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(VENV) docs/_build
