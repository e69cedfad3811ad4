#!/usr/bin/env bash
# tools/dist_launch.sh GPUS SCRIPT [args]: runs tools/SCRIPT with --launcher pytorch in one process
# per GPU (per CPU process without CUDA) through torchrun; what dist_train.sh, dist_test.sh and
# dist_extract_proposals.sh share. NNODES, NODE_RANK, MASTER_ADDR and PORT work as in mmdet; PYTHON
# picks the interpreter (default: the checkout's .venv, else python; tools/python_env.sh).
GPUS=$1
SCRIPT=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
# shellcheck source=tools/python_env.sh
source "$(dirname "$0")/python_env.sh"

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$SCRIPT" \
    "${@:3}" \
    --launcher pytorch
