# The two commands of the README: `make demo` and `make test`. Both create the environment (.venv)
# first when it is missing or out of date.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: env demo test benchmark-ops benchmark-chips benchmark-pipeline benchmark-inference cuda-check

env:
	tools/setup_env.sh $(VENV)

# Until the real-data demo lands: SNIPER training of the tiny CPU config on synthetic data, then
# its COCO evaluation with SNIPER's multi-scale test.
demo: env
	$(PY) tools/make_synthetic_data.py data/synthetic
	$(PY) tools/train.py configs/sniper_faster_rcnn_r18_tiny_cpu.py --work-dir work_dirs/demo
	$(PY) tools/test.py configs/sniper_faster_rcnn_r18_tiny_cpu.py work_dirs/demo/epoch_12.pth --work-dir work_dirs/demo/test

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
