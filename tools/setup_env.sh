#!/usr/bin/env bash
# Creates (or completes) the dev environment in .venv: torch 2.13.0 CPU, mmcv 2.1.0 built with ops,
# mmengine, mmdet, pycocotools, pytest, and mmdet-sniper itself installed editable.
# Idempotent: a finished environment is recognised by a stamp holding the hash of its recipe.
# Usage: tools/setup_env.sh [VENV_DIR]   (default .venv in the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.venv}
stamp=$venv/.sniper-env-stamp
recipe_hash=$(cat "$root/requirements.txt" "$0" "$root/setup.py" | sha256sum | cut -d' ' -f1)
ext_sources_hash=$(find "$root/csrc" -type f | sort | xargs cat | sha256sum | cut -d' ' -f1)

if [[ -f $stamp && $(cat "$stamp") == "$recipe_hash" ]]; then
  # Environment complete; rebuild only the extension when csrc/ changed since the last build.
  if [[ ! -f $venv/.sniper-ext-stamp || $(cat "$venv/.sniper-ext-stamp") != "$ext_sources_hash" ]]; then
    echo "[setup_env] csrc/ changed: rebuilding mmdet_sniper._C"
    (cd "$root" && "$venv/bin/python" setup.py -q build_ext --inplace)
    echo "$ext_sources_hash" > "$venv/.sniper-ext-stamp"
  fi
  exit 0
fi

echo "[setup_env] creating the environment in $venv"
[[ -x $venv/bin/python ]] || python3.11 -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
pip install -q torch==2.13.0
# mmcv 2.1.0's setup.py imports pkg_resources (gone from setuptools >= 81) and must see our torch,
# so it builds without isolation. pip caches the built wheel: only the first install compiles (~6 min).
pip install -q "setuptools>=77.0.3,<81" wheel ninja numpy
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} pip install --no-build-isolation mmcv==2.1.0
pip install -q -r "$root/requirements.txt"
(cd "$root" && pip install -q --no-build-isolation -e .)
echo "$ext_sources_hash" > "$venv/.sniper-ext-stamp"
echo "$recipe_hash" > "$stamp"
echo "[setup_env] done"
