#!/usr/bin/env bash
# tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]: tools/test.py in one process per GPU (per
# CPU process without CUDA) through torchrun; environment as in tools/dist_launch.sh.
exec "$(dirname "$0")/dist_launch.sh" "$3" test.py "$1" "$2" "${@:4}"
