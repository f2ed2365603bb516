# qdet: fresh-machine entry points. `make demo` and `make test` create ./.venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
PYTEST_ARGS ?=

.PHONY: setup test demo bench-accuracy clean

setup: $(STAMP)

# Reinstall only when the pinned inputs change. finn-plus goes in with --no-deps: its brevitas==0.13.0 and mip
# pins conflict with this stack, and the parts of FINN we use need neither (shared/toolchain.md).
$(STAMP): constraints.txt requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps finn-plus==1.6.1
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, brevitas, qonnx, finn, faster_coco_eval; assert torch.__version__.endswith('+cpu') or torch.cuda.is_available(), torch.__version__"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -n 2 --durations=15 $(PYTEST_ARGS)

demo: setup
	$(BIN)/qdet demo --out $(DEMO_DIR)

bench-accuracy: setup
	$(BIN)/python -m bench.accuracy

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
