#!/usr/bin/env bash
# The GPU run rehearsed on a machine without a GPU, so that GPU minutes are not spent finding
# compile or script errors:
#   1. a Python 3.12 environment standing in for the GPU image: torch 2.11.0 (a CUDA 13 build) and
#      what requirements/gpu_image.txt says the image holds;
#   2. tools/gpu_wheelhouse.sh fills .whl;
#   3. tools/gpu_check.sh, as the GPU machine runs it, with TORCH_CUDA_ARCH_LIST=9.0 (the H100/H200):
#      tools/gpu_setup.sh installs the wheels offline and compiles ALL of mmcv 2.1.0's CUDA sources
#      and this project's with the local nvcc against torch 2.11.0's headers; then the op and chip
#      tests and benchmarks (CUDA cases skipped), and tools/benchmark_gpu.py at a smoke size on CPU.
# Needs nvcc (CUDA 13) on the PATH. The mmcv build is most of the time (see BENCHMARKS.md).
# Usage: tools/gpu_rehearsal.sh OUT_DIR [VENV]   (default .venv-gpu in the repository root)
set -euo pipefail
out=${1:?usage: tools/gpu_rehearsal.sh OUT_DIR [VENV]}
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${2:-$root/.venv-gpu}
command -v nvcc >/dev/null || { echo "gpu_rehearsal: nvcc not found on the PATH" >&2; exit 1; }
if [[ ! -x $venv/bin/python ]]; then
  python312=
  for candidate in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
    if "$candidate" -V >/dev/null 2>&1; then python312=$candidate; break; fi
  done
  [[ -n $python312 ]] || { echo "gpu_rehearsal: no Python 3.12 found (the GPU image's)" >&2; exit 1; }
  "$python312" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q -r "$root/requirements/gpu_image.txt"

PYTHON=$root/.venv/bin/python "$root/tools/gpu_wheelhouse.sh" "$root/.whl"

# shellcheck source=tools/cuda_toolkit_env.sh
source "$root/tools/cuda_toolkit_env.sh" "$venv/bin/python"
export PATH=$venv/bin:$PATH  # gpu_check.sh runs python3, as on the GPU machine
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export GPU_SITE=${GPU_SITE:-$root/.gpu-site-rehearsal} WORK_DIR=${WORK_DIR:-$root/work_dirs/gpu_rehearsal}
export GPU_CHECK_ARGS=${GPU_CHECK_ARGS:---iters 4 --batch 2 --full-batch 1 --images 4 --val-images 2 --dist-iters 2 --workers 0}
"$root/tools/gpu_check.sh" "$out" "$root/.whl"
