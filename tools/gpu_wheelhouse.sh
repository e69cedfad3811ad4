#!/usr/bin/env bash
# Downloads what a GPU machine without a package registry lacks to run SNIPER, into one folder that
# travels with the source tree (64 MiB at most): the wheels of mmengine, mmdet, pycocotools and their
# small dependencies for CPython 3.12 on manylinux x86_64, and mmcv 2.1.0's source distribution
# (its CUDA ops are built there, for the local GPU, by tools/gpu_setup.sh).
# Run it on a machine with registry access. pip reads the sdist's metadata by running mmcv's
# setup.py, which imports torch and pkg_resources: PYTHON must hold torch and setuptools < 81 (default
# the dev environment's, .venv, which `make env` creates).
# Usage: tools/gpu_wheelhouse.sh [DIR]   (default .whl in the repository root, ignored by git)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.whl}
python=${PYTHON:-$root/.venv/bin/python}
mkdir -p "$dir"

# requirements/gpu_wheels.txt: what the GPU image (requirements/gpu_image.txt) lacks.
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$dir" -r "$root/requirements/gpu_wheels.txt"
"$python" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$dir" mmcv==2.1.0

# One version of each package: two would stop the offline install.
dupes=$(ls "$dir" | sed -E 's/^([A-Za-z0-9_.]+)-[0-9].*/\L\1/; s/[-_.]+/_/g' | sort | uniq -d)
if [[ -n $dupes ]]; then
  echo "gpu_wheelhouse: more than one version of: $dupes in $dir (remove the old ones)" >&2
  exit 1
fi
size=$(du -sm "$dir" | cut -f1)
echo "gpu_wheelhouse: $(ls "$dir" | wc -l) files, ${size} MiB in $dir"
if (( size > 48 )); then
  echo "gpu_wheelhouse: over 48 MiB, too much beside the source tree for the GPU machine's 64 MiB" >&2
  exit 1
fi
