#!/usr/bin/env bash
# Creates (or completes) the dev environment in .venv: the versions requirements.txt pins (torch CPU,
# mmcv built with ops, mmengine, mmdet), pycocotools, pytest, and mmdet-sniper itself installed
# editable; then checks the pins, also when the environment was already complete.
# Idempotent: a finished environment is recognised by a stamp holding the hash of its recipe.
# Usage: tools/setup_env.sh [VENV_DIR]   (default .venv in the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.venv}
stamp=$venv/.sniper-env-stamp
recipe_hash=$(cat "$root/requirements.txt" "$root"/requirements/{runtime,mminstall,tests}.txt "$0" "$root/setup.py" \
  | sha256sum | cut -d' ' -f1)
ext_sources_hash=$(find "$root/csrc" -type f | sort | xargs cat | sha256sum | cut -d' ' -f1)

pin() { grep -E "^$1==" "$root/requirements.txt"; }

# Fails, naming each package, where the environment holds another version than requirements.txt pins
# (a package installed by hand, or pulled in by another one's requirements). It reads only the
# packages' metadata, so the path of a complete environment stays fast.
check_pins() {
  "$venv/bin/python" - "$root/requirements.txt" "$venv" <<'PY'
import re
import sys
from importlib.metadata import PackageNotFoundError, version

requirements, venv = sys.argv[1:]
wrong = []
for line in open(requirements):
    pinned = re.fullmatch(r'([A-Za-z0-9_.-]+)==(\S+)', line.split('#')[0].strip())
    if pinned:
        name, expected = pinned.groups()
        try:
            found = version(name).split('+')[0]  # without a local label such as torch's +cpu
        except PackageNotFoundError:
            found = 'not installed'
        if found != expected:
            wrong.append(f'{name}: expected {expected}, found {found}')
if wrong:
    sys.exit(f'[setup_env] {venv} does not hold the versions requirements.txt pins:\n  ' + '\n  '.join(wrong)
             + f'\n[setup_env] remove {venv} and rerun tools/setup_env.sh to recreate it')
PY
}

if [[ -f $stamp && $(cat "$stamp") == "$recipe_hash" ]]; then
  # Environment complete; rebuild only the extension when csrc/ changed since the last build.
  if [[ ! -f $venv/.sniper-ext-stamp || $(cat "$venv/.sniper-ext-stamp") != "$ext_sources_hash" ]]; then
    echo "[setup_env] csrc/ changed: rebuilding mmdet_sniper._C"
    (cd "$root" && "$venv/bin/python" setup.py -q build_ext --inplace)
    echo "$ext_sources_hash" > "$venv/.sniper-ext-stamp"
  fi
  check_pins
  exit 0
fi

echo "[setup_env] creating the environment in $venv"
[[ -x $venv/bin/python ]] || python3.11 -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
pip install -q "$(pin torch)"
# mmcv's setup.py imports pkg_resources (gone from setuptools >= 81) and must see our torch, so it
# builds without isolation. pip caches the built wheel: only the first install compiles (~6 min).
pip install -q "setuptools>=77.0.3,<81" wheel ninja numpy
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} pip install --no-build-isolation "$(pin mmcv)"
pip install -q -r "$root/requirements.txt"
(cd "$root" && pip install -q --no-build-isolation -e .)
check_pins
echo "$ext_sources_hash" > "$venv/.sniper-ext-stamp"
echo "$recipe_hash" > "$stamp"
echo "[setup_env] done"
