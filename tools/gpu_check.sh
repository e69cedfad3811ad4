#!/usr/bin/env bash
# Every GPU check in one run, for a machine with a GPU and torch but no mmcv/mmdet: builds
# mmdet_sniper._C with its CUDA kernels for the local GPU, runs the op and chip tests (their CUDA
# cases run when a GPU is present), then the op and chip benchmarks. Logs go to OUT_DIR.
# Usage: tools/gpu_check.sh OUT_DIR
set -uo pipefail
out=${1:?usage: tools/gpu_check.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name())' 2>&1 | tee "$out/env.txt"
nproc | tee -a "$out/env.txt"
arch=$(python3 -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
rm -f mmdet_sniper/_C*.so
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=$(nproc) python3 setup.py -q build_ext --inplace >"$out/build.log" 2>&1 \
  || { tail -40 "$out/build.log"; exit 1; }
status=0
# xdist workers: a test that crashes the interpreter is reported and the others still run.
python3 -m pytest -v -n 8 -p no:cacheprovider -rs tests/ops tests/chips 2>&1 | tee "$out/tests.log" || status=1
python3 tools/benchmark_ops.py 2>&1 | tee "$out/benchmark_ops.md" || status=1
python3 tools/benchmark_chips.py 2>&1 | tee "$out/benchmark_chips.md" || status=1
exit $status
