#!/usr/bin/env bash
# tools/dist_extract_proposals.sh CONFIG CHECKPOINT GPUS --out FILE [args]: tools/extract_proposals.py
# in one process per GPU (per CPU process without CUDA) through torchrun; environment as in
# tools/dist_launch.sh.
exec "$(dirname "$0")/dist_launch.sh" "$3" extract_proposals.py "$1" "$2" "${@:4}"
