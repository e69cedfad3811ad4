#!/usr/bin/env bash
# tools/sniper_pipeline.sh RPN_CONFIG DETECTOR_CONFIG WORK_DIR [GPUS] [args for every step]
#
# SNIPER's whole recipe in one work dir; each step is skipped once done, so rerunning resumes:
#   1. train the RPN on positive chips                    WORK_DIR/rpn
#   2. its proposals on the training images               WORK_DIR/proposals.pkl
#   3. train the detector on positive and negative chips  WORK_DIR/detector
#   4. evaluate it with the config's multi-scale test     WORK_DIR/detector/test (metrics in its log)
# GPUS > 1 runs every step with torchrun (tools/dist_*.sh). The remaining arguments go to every
# step (e.g. --cfg-options train_dataloader.dataset.cache_dir=...); RPN_ARGS and DETECTOR_ARGS (in
# the environment) go to the steps of one model: the RPN's training and its proposal extraction,
# the detector's training and its test, so that options changing a model reach every step that
# builds it. TEST_ARGS go to the final test alone (e.g. --show-dir vis). SEED seeds both trainings
# (tools/train.py --seed). PYTHON picks the interpreter (default: the checkout's .venv, else python;
# tools/python_env.sh).
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,15p' "$0"
    exit 2
fi
RPN_CONFIG=$1
DETECTOR_CONFIG=$2
WORK_DIR=$3
if [ $# -ge 4 ] && [[ $4 =~ ^[0-9]+$ ]]; then
    GPUS=$4
    shift 4
else
    GPUS=1
    shift 3
fi
TOOLS=$(dirname "$0")
# shellcheck source=tools/python_env.sh
source "$TOOLS/python_env.sh"

# The last checkpoint a training run in $1 wrote.
last_checkpoint() { cat "$1/last_checkpoint"; }

train() {  # CONFIG WORK_DIR ARGS...
    local config=$1 work_dir=$2
    shift 2
    if [ -n "${SEED:-}" ]; then
        set -- --seed "$SEED" "$@"
    fi
    if [ -f "$work_dir/.done" ]; then
        echo "sniper_pipeline: $work_dir is trained, skipping"
        return
    fi
    if [ "$GPUS" -gt 1 ]; then
        "$TOOLS/dist_train.sh" "$config" "$GPUS" --work-dir "$work_dir" --resume "$@"
    else
        "$PYTHON" "$TOOLS/train.py" "$config" --work-dir "$work_dir" --resume "$@"
    fi
    touch "$work_dir/.done"
}

# shellcheck disable=SC2086  # RPN_ARGS and DETECTOR_ARGS are word lists
train "$RPN_CONFIG" "$WORK_DIR/rpn" "$@" ${RPN_ARGS:-}

PROPOSALS=$WORK_DIR/proposals.pkl
if [ -f "$PROPOSALS" ]; then
    echo "sniper_pipeline: $PROPOSALS exists, skipping"
else
    RPN_CHECKPOINT=$(last_checkpoint "$WORK_DIR/rpn")
    # shellcheck disable=SC2086
    if [ "$GPUS" -gt 1 ]; then
        "$TOOLS/dist_extract_proposals.sh" "$RPN_CONFIG" "$RPN_CHECKPOINT" "$GPUS" --out "$PROPOSALS.partial.pkl" \
            --work-dir "$WORK_DIR/proposals" "$@" ${RPN_ARGS:-}
    else
        "$PYTHON" "$TOOLS/extract_proposals.py" "$RPN_CONFIG" "$RPN_CHECKPOINT" --out "$PROPOSALS.partial.pkl" \
            --work-dir "$WORK_DIR/proposals" "$@" ${RPN_ARGS:-}
    fi
    mv "$PROPOSALS.partial.pkl" "$PROPOSALS"
fi

# shellcheck disable=SC2086
train "$DETECTOR_CONFIG" "$WORK_DIR/detector" "$@" \
    --cfg-options "train_dataloader.dataset.proposals_file=$PROPOSALS" ${DETECTOR_ARGS:-}

DETECTOR_CHECKPOINT=$(last_checkpoint "$WORK_DIR/detector")
# shellcheck disable=SC2086
if [ "$GPUS" -gt 1 ]; then
    "$TOOLS/dist_test.sh" "$DETECTOR_CONFIG" "$DETECTOR_CHECKPOINT" "$GPUS" --work-dir "$WORK_DIR/detector/test" \
        "$@" ${DETECTOR_ARGS:-} ${TEST_ARGS:-}
else
    "$PYTHON" "$TOOLS/test.py" "$DETECTOR_CONFIG" "$DETECTOR_CHECKPOINT" --work-dir "$WORK_DIR/detector/test" \
        "$@" ${DETECTOR_ARGS:-} ${TEST_ARGS:-}
fi
