#!/usr/bin/env bash
# Checks that the compiled ops' sources (csrc/: .cpp, .h, .cu, .cuh) follow the repository's
# .clang-format; exits non-zero and shows the drift when they do not. With --fix, formats them in place.
# Needs clang-format on the PATH, or its path in CLANG_FORMAT. The tree is formatted with clang-format
# 19.1.7 (`pip install clang-format==19.1.7`); other major versions may format some lines differently.
# Usage: tools/lint_csrc.sh [--fix]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "lint_csrc: '$clang_format' not found; install it with 'pip install clang-format==19.1.7'" \
    "or set CLANG_FORMAT to its path" >&2
  exit 2
fi
version=$("$clang_format" --version)
if [[ $version != *"version 19."* ]]; then
  echo "lint_csrc: warning: $version; csrc/ is formatted with clang-format 19.1.7" >&2
fi

cd "$root"
mapfile -t sources < <(find csrc -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) | sort)
if [[ ${1:-} == --fix ]]; then
  "$clang_format" -i "${sources[@]}"
else
  "$clang_format" --dry-run --Werror "${sources[@]}"
  echo "lint_csrc: ${#sources[@]} files in csrc/ follow .clang-format"
fi
