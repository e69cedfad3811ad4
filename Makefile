# The two commands of the README: `make demo` and `make test`. Both create the environment (.venv)
# first when it is missing or out of date.
VENV ?= .venv
PY := $(VENV)/bin/python
# The suite's parallel workers (pytest-xdist): two, one a core of CI's machine. Most end-to-end tests run
# their training on one thread, so one pytest process leaves a core idle; `make test XDIST=` runs in one.
XDIST ?= -n 2 --dist worksteal

.PHONY: env demo test test-fast test-wheel test-matrix lint benchmark-ops benchmark-chips benchmark-pipeline benchmark-inference cuda-check gpu-wheelhouse gpu-rehearsal

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

# The suite, without the test that builds and installs the wheel (test-wheel; CI runs both).
test: env
	$(PY) -m pytest tests $(XDIST) -m "not wheel"

# The sdist, its wheel installed in a new venv, a config outside the repository trained from it.
test-wheel: env
	$(PY) -m pytest tests -m wheel

# The suite without the end-to-end tests marked slow (training, the recipe, the tools that train).
test-fast: env
	$(PY) -m pytest tests $(XDIST) -m "not slow"

# CI's other legs of the support matrix (README, "Supported versions"): each builds its environment in
# .venv-LEG from requirements/matrix/LEG.txt (one leg a file), then runs the fast tests there;
# `make test-leg-common` runs one. Their mmcv builds at -O1 (364 s against 417 s at -O3 for the common
# leg's): these environments only run the fast tests, where mmcv's kernels see a few boxes; the dev
# environment, which the benchmarks use, keeps -O3.
LEGS := $(basename $(notdir $(wildcard requirements/matrix/*.txt)))
test-matrix: $(LEGS:%=test-leg-%)

test-leg-%:
	MMCV_OPT=-O1 tools/setup_env.sh .venv-$* requirements/matrix/$*.txt
	.venv-$*/bin/python -m pytest tests $(XDIST) -m "not slow"

# flake8 and isort (setup.cfg) in their own .venv-lint, and tools/lint_csrc.sh; tools/lint.sh --fix sorts imports.
lint:
	tools/lint.sh

# Builds the CUDA kernels against torch 2.14.1 in .venv-cuda (no GPU needed); run by CI.
cuda-check:
	tools/cuda_compile_check.sh

# The wheels and mmcv's sdist a GPU machine without a registry needs (DEVELOPERS.md, "On a GPU machine").
gpu-wheelhouse: env
	PYTHON=$(PY) tools/gpu_wheelhouse.sh .whl

# The GPU run rehearsed here: Python 3.12 + torch 2.11.0 as on the GPU image, all of mmcv's CUDA
# sources compiled for sm_90, the GPU check at a smoke size on the CPU. About an hour on 2 cores.
gpu-rehearsal: env
	tools/gpu_rehearsal.sh work_dirs/gpu_rehearsal_out
