#!/usr/bin/env bash
# tools/dist_train.sh CONFIG GPUS [train.py args]: tools/train.py in one process per GPU (per CPU
# process without CUDA) through torchrun; environment as in tools/dist_launch.sh.
exec "$(dirname "$0")/dist_launch.sh" "$2" train.py "$1" "${@:3}"
