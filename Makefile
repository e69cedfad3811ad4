# The two commands of the README: `make demo` and `make test`. Both create the environment (.venv)
# first when it is missing or out of date.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: env demo test benchmark-ops benchmark-chips benchmark-pipeline benchmark-inference cuda-check

env:
	tools/setup_env.sh $(VENV)

# SNIPER's whole recipe (RPN, proposals, chips, detector, multi-scale test) on the aerial tree crowns
# of the deepforest wheel with an ImageNet MobileNetV2; see tools/demo.sh.
demo: env
	PYTHON=$(PY) tools/demo.sh work_dirs/demo

benchmark-inference: env
	$(PY) tools/benchmark_inference.py

benchmark-ops: env
	$(PY) tools/benchmark_ops.py

benchmark-chips: env
	$(PY) tools/benchmark_chips.py

benchmark-pipeline: env
	$(PY) tools/benchmark_pipeline.py --images 200

test: env
	$(PY) -m pytest tests

# Builds the CUDA kernels against torch 2.14.1 in .venv-cuda (no GPU needed); run by CI.
cuda-check:
	tools/cuda_compile_check.sh
