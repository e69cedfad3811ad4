#!/usr/bin/env bash
# CUDA compile check, no GPU needed: builds mmdet_sniper._C with its CUDA kernels (FORCE_CUDA=1, sm_80
# and sm_90) against torch 2.14.1 (a CUDA 13 build) in a second environment, checks that the CUDA
# kernels are registered, and runs the op tests there (their CUDA cases skip without a GPU).
# The build happens in a scratch copy, so the dev environment's extension is left alone.
# Usage: tools/cuda_compile_check.sh [VENV_DIR]   (default .venv-cuda in the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# A check that cannot compile fails: CI must not pass without having built the CUDA kernels.
if ! command -v nvcc >/dev/null 2>&1; then
  echo "[cuda_compile_check] failed: nvcc not found on the PATH; install the CUDA toolkit or put its bin/ on the PATH" >&2
  exit 1
fi
venv=${1:-$root/.venv-cuda}
[[ -x $venv/bin/python ]] || python3.11 -m venv "$venv"
"$venv/bin/python" -m pip install -q torch==2.14.1 "setuptools>=77.0.3" wheel ninja numpy pytest

# shellcheck source=tools/cuda_toolkit_env.sh
source "$root/tools/cuda_toolkit_env.sh" "$venv/bin/python"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$root" && tar --exclude='*.so' --exclude=__pycache__ -cf - setup.py requirements csrc mmdet_sniper tests/ops) | tar -xf - -C "$scratch"
cd "$scratch"
echo "[cuda_compile_check] building with CUDA_HOME=$CUDA_HOME for sm_80, sm_90"
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" MAX_JOBS=${MAX_JOBS:-2} \
  "$venv/bin/python" setup.py -q build_ext --inplace
"$venv/bin/python" - <<'PY'
import torch
from mmdet_sniper import ops
for op in ops.__all__:
    for key in ('CPU', 'CUDA'):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f'sniper::{op}', key), f'sniper::{op} has no {key} kernel'
print(f'[cuda_compile_check] torch {torch.__version__} (CUDA {torch.version.cuda}): CPU and CUDA kernels registered')
PY
PYTHONPATH=$scratch "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/ops
