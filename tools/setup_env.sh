#!/usr/bin/env bash
# Creates (or completes) an environment: the Python and the versions a requirements file pins (torch,
# mmcv or onedl-mmcv built with ops, mmengine, mmdet), pycocotools, pytest, and mmdet-sniper itself
# installed editable; then checks the pins, also when the environment was already complete.
# The dev environment is requirements.txt in .venv; CI's other legs are requirements/matrix/*.txt
# (make test-matrix). The file's `# python X.Y` line names the Python.
# Idempotent: a finished environment is recognised by a stamp holding the hash of its recipe.
# Usage: tools/setup_env.sh [VENV_DIR [REQUIREMENTS]]   (default .venv and requirements.txt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.venv}
requirements=$(realpath "${2:-$root/requirements.txt}")
stamp=$venv/.sniper-env-stamp
recipe_hash=$(cat "$requirements" "$root"/requirements/{runtime,mminstall,tests}.txt "$0" "$root/setup.py" \
  | sha256sum | cut -d' ' -f1)
ext_sources_hash=$(find "$root/csrc" -type f | sort | xargs cat | sha256sum | cut -d' ' -f1)

# The environments run the tests on the CPU: the CPU kernels only, also where torch is a CUDA build (PyPI's
# torch 2.0 and 2.1 are) beside a CUDA toolkit of another version, with which torch refuses to build.
export FORCE_CUDA=${FORCE_CUDA:-0}

pin() {
  grep -E "^$1([=<>!~]|\$)" "$requirements" || { echo "[setup_env] $requirements pins no $1" >&2; exit 1; }
}
python_version=$(sed -n 's/^# python \([0-9][0-9.]*\)$/\1/p' "$requirements")
[[ -n $python_version ]] || { echo "[setup_env] $requirements has no '# python X.Y' line" >&2; exit 1; }

# pythonX.Y on the PATH, or pyenv's build of it when the PATH's is a pyenv shim for another version.
find_python() {
  local candidate
  for candidate in "python$python_version" "$(pyenv root 2>/dev/null)"/versions/"$python_version".*/bin/python"$python_version"; do
    if "$candidate" -c '' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "[setup_env] $requirements needs Python $python_version, which is not installed (pyenv install $python_version)" >&2
  exit 1
}

# Fails, naming each package, where the environment holds another version than the requirements file pins
# (a package installed by hand, or pulled in by another one's requirements). It reads only the
# packages' metadata, so the path of a complete environment stays fast.
check_pins() {
  "$venv/bin/python" - "$requirements" "$venv" <<'PY'
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
    sys.exit(f'[setup_env] {venv} does not hold the versions {requirements} pins:\n  ' + '\n  '.join(wrong)
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
[[ -x $venv/bin/python ]] || "$(find_python)" -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
pip install -q "$(pin torch)"
# mmcv's setup.py imports pkg_resources (gone from setuptools >= 81) and must see our torch, so it
# builds without isolation. pip caches the built wheel: only the first install compiles (~7 min).
# Python 3.8 gets setuptools 75, the last release for it.
pip install -q "setuptools<81" wheel ninja "$( (pin numpy) 2>/dev/null || echo numpy)"
mmcv=$(grep -E '^(onedl-)?mmcv==' "$requirements") || { echo "[setup_env] $requirements pins no mmcv" >&2; exit 1; }
# Python's own CFLAGS with -g0 last: their -g (debug info) nearly doubles the compile time of mmcv's ops.
# Both variables, as setuptools reads CXXFLAGS for C++ files where it has one. MMCV_OPT (say -O1) comes
# last of all: the Makefile's CI legs use it, as they only run the fast tests.
build_flags="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")') -g0 ${MMCV_OPT:-}"
CFLAGS=$build_flags CXXFLAGS=$build_flags MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} \
  pip install --no-build-isolation "$mmcv"
pip install -q -r "$requirements"
(cd "$root" && pip install -q --no-build-isolation -e .)
check_pins
echo "$ext_sources_hash" > "$venv/.sniper-ext-stamp"
echo "$recipe_hash" > "$stamp"
echo "[setup_env] done"
