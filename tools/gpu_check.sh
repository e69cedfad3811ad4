#!/usr/bin/env bash
# Every GPU check in one run, for a machine with a GPU and torch but no mmcv/mmdet and no package
# registry (tools/gpu_wheelhouse.sh fills WHEEL_DIR beforehand, elsewhere):
#   1. tools/gpu_setup.sh: the wheels, mmcv 2.1.0 and mmdet_sniper._C built for the local GPU;
#   2. the op and chip tests (their CUDA cases run when a GPU is present), then the op and chip
#      benchmarks;
#   3. tools/benchmark_gpu.py: SNIPER's R50 COCO config trained on chips with AMP, the same model
#      on whole images at three scales, SNIPER's full and sliced tests, a torchrun training.
# Logs and tables go to OUT_DIR (8 files); the work dirs to WORK_DIR (default work_dirs/gpu_check).
# Usage: tools/gpu_check.sh OUT_DIR [WHEEL_DIR]   (GPU_CHECK_ARGS: more benchmark_gpu.py arguments)
set -uo pipefail
out=${1:?usage: tools/gpu_check.sh OUT_DIR [WHEEL_DIR]}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 1
wheels=${2:-.whl}
site=${GPU_SITE:-$PWD/.gpu-site}
work=${WORK_DIR:-work_dirs/gpu_check}
export PYTHONUNBUFFERED=1 PYTHONPATH=$site:$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$SECONDS
{ python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
  echo "cores: $(nproc)"; } 2>&1 | tee "$out/env.txt"
tools/gpu_setup.sh "$wheels" "$site" 2>&1 | tee "$out/setup.log" || exit 1
echo "setup: $((SECONDS - start)) s" | tee -a "$out/env.txt"
status=0
# xdist workers: a test that crashes the interpreter is reported and the others still run.
python3 -m pytest -v -n 8 -p no:cacheprovider -rs tests/ops tests/chips 2>&1 | tee "$out/tests.log" || status=1
python3 tools/benchmark_ops.py 2>&1 | tee "$out/benchmark_ops.md" || status=1
python3 tools/benchmark_chips.py 2>&1 | tee "$out/benchmark_chips.md" || status=1
echo "tests and op benchmarks: $((SECONDS - start)) s" | tee -a "$out/env.txt"
# shellcheck disable=SC2086
python3 tools/benchmark_gpu.py --work-dir "$work" ${GPU_CHECK_ARGS:-} >"$out/benchmark_gpu.log" 2>&1 || status=1
tail -n 30 "$out/benchmark_gpu.log"
cp "$work/results.md" "$out/benchmark_gpu.md" 2>/dev/null
cp "$work/results.json" "$out/benchmark_gpu.json" 2>/dev/null
echo "total: $((SECONDS - start)) s" | tee -a "$out/env.txt"
exit $status
