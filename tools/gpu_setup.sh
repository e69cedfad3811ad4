#!/usr/bin/env bash
# Sets SNIPER up on a GPU machine that has torch with CUDA but no mmcv/mmengine/mmdet and no package
# registry, from the folder tools/gpu_wheelhouse.sh filled elsewhere:
#   1. installs its wheels into SITE (no index, no dependencies resolved: the image holds the rest);
#   2. builds mmcv 2.1.0 from its source distribution with its CUDA ops for the local GPU only;
#   3. builds this project's extension with its CUDA kernels, in place;
#   4. runs mmcv's nms and roi_align on the GPU and checks that our ops have CUDA kernels.
# Then: export PYTHONPATH=SITE:$PWD   (tools/gpu_check.sh does it itself).
# A second run on the same machine skips the mmcv build (SITE holds it) and rebuilds ours incrementally.
# Usage: tools/gpu_setup.sh [WHEEL_DIR] [SITE]   (defaults .whl and .gpu-site in the repository root)
# Environment: PYTHON (default python3), TORCH_CUDA_ARCH_LIST (default the local GPU's; required
# without a GPU, e.g. 9.0 for a compile check), MAX_JOBS (default all cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wheels=$(cd "${1:-$root/.whl}" && pwd)
site=${2:-$root/.gpu-site}
python=${PYTHON:-python3}
mkdir -p "$site"
site=$(cd "$site" && pwd)
log=$site/setup-logs
mkdir -p "$log"
export PYTHONPATH=$site:$root${PYTHONPATH:+:$PYTHONPATH}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
if [[ -z ${TORCH_CUDA_ARCH_LIST:-} ]]; then
  TORCH_CUDA_ARCH_LIST=$("$python" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())') || {
    echo "gpu_setup: no GPU found; set TORCH_CUDA_ARCH_LIST (e.g. 9.0) to build for one" >&2; exit 1; }
fi
export TORCH_CUDA_ARCH_LIST
step() { echo "[gpu_setup $(date +%T)] $*"; }
step "torch $("$python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)'), arch $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs, into $site"

step "installing $(ls "$wheels"/*.whl | wc -l) wheels"
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl \
  2>&1 | grep -v -e 'WARNING: Target directory' -e 'already exists' || true

# mmcv 2.1.0's setup.py: MMCV_WITH_OPS builds its ops, FORCE_CUDA their CUDA kernels (also when no
# GPU is visible), with its own -std=c++17, which torch 2.11's headers accept. It imports
# pkg_resources (setuptools < 81, one of the wheels, first on PYTHONPATH) and must see the image's
# torch: no build isolation.
if ! "$python" -c 'import mmcv.ops' >/dev/null 2>&1; then
  step "building mmcv 2.1.0 with CUDA ops (log: $log/mmcv.log)"
  sdist=$(ls "$wheels"/mmcv-2.1.0.tar.gz)
  start=$SECONDS
  if ! MMCV_WITH_OPS=1 FORCE_CUDA=1 "$python" -m pip install -v --no-index --no-deps --no-build-isolation \
      --no-cache-dir --upgrade --target "$site" "$sdist" >"$log/mmcv.log" 2>&1; then
    grep -m 20 -B 2 -A 8 -e 'error' "$log/mmcv.log" | tail -60 >&2
    echo "gpu_setup: the mmcv build failed; the whole log: $log/mmcv.log" >&2
    exit 1
  fi
  step "mmcv built in $((SECONDS - start)) s"
fi

# Incremental: build/ keeps the objects of an earlier run.
step "building mmdet_sniper._C with CUDA kernels (log: $log/sniper.log)"
(cd "$root" && FORCE_CUDA=1 "$python" setup.py -q build_ext --inplace) >"$log/sniper.log" 2>&1 \
  || { tail -40 "$log/sniper.log" >&2; exit 1; }

"$python" - <<'PY'
import torch
import mmcv, mmdet, mmengine
from mmcv.ops import nms, roi_align
from mmdet_sniper import ops

print(f'[gpu_setup] mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}')
for op in ops.__all__:
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f'sniper::{op}', 'CUDA'), f'sniper::{op} has no CUDA kernel'
if torch.cuda.is_available():
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]], device='cuda')
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device='cuda'), 0.5)
    assert keep.tolist() == [0, 2], keep
    rois = torch.tensor([[0., 0., 0., 8., 8.]], device='cuda')
    pooled = roi_align(torch.ones(1, 2, 16, 16, device='cuda'), rois, (2, 2), 1.0, 2)
    assert torch.allclose(pooled, torch.ones_like(pooled)), pooled
    print('[gpu_setup] mmcv nms and roi_align run on', torch.cuda.get_device_name())
else:
    print('[gpu_setup] no GPU: built and imported, not run')
PY
