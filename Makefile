# The two commands of the README: `make demo` and `make test`. Both create the environment (.venv)
# first when it is missing or out of date.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: env demo test benchmark-ops benchmark-chips cuda-check

env:
	tools/setup_env.sh $(VENV)

# Until the SNIPER demo lands, the main job is the chip-generation benchmark.
demo: benchmark-chips

benchmark-ops: env
	$(PY) tools/benchmark_ops.py

benchmark-chips: env
	$(PY) tools/benchmark_chips.py

test: env
	$(PY) -m pytest tests

# Builds the CUDA kernels against torch 2.14.1 in .venv-cuda (no GPU needed); run by CI.
cuda-check:
	tools/cuda_compile_check.sh
