#!/usr/bin/env bash
# Lints as OpenMMLab's projects do: flake8 and isort, with the settings in setup.cfg, on the Python
# code, and clang-format on csrc/ (tools/lint_csrc.sh, .clang-format). Runs every check and fails if
# any failed. flake8, isort and clang-format live in .venv-lint, created or brought up to date with
# requirements/lint.txt when that file changes.
# Usage: tools/lint.sh [--fix]   (--fix sorts the imports and formats csrc/ in place before checking)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-lint
stamp=$venv/.lint-stamp
want=$(sha256sum < "$root/requirements/lint.txt" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "[lint] installing requirements/lint.txt into $venv"
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q -r "$root/requirements/lint.txt"
  echo "$want" > "$stamp"
fi

cd "$root"
paths=(mmdet_sniper tools tests configs setup.py)
if [[ ${1:-} == --fix ]]; then
  "$venv/bin/isort" "${paths[@]}"
  CLANG_FORMAT=$venv/bin/clang-format bash tools/lint_csrc.sh --fix
fi
failed=0
"$venv/bin/flake8" "${paths[@]}" || failed=1
"$venv/bin/isort" --check-only --diff "${paths[@]}" || failed=1
CLANG_FORMAT=$venv/bin/clang-format bash tools/lint_csrc.sh || failed=1
if (( failed )); then
  echo "[lint] failed (tools/lint.sh --fix sorts the imports and formats csrc/)" >&2
  exit 1
fi
echo "[lint] passed"
