"""Draws SNIPER's chips of chosen training images: per scale, the positive chips (green) and
negative chips (red) on the image, with the ground truth valid at that scale (white) and the rest
(grey: out of the scale's range or crowd, ignored there).

    python tools/browse_chips.py configs/sniper_faster_rcnn.py --out-dir work_dirs/chips --images 0 5 9

Reads the config's training set (its SniperDataset: chips of --epoch; proposals if the config names
them) and the images; writes OUT_DIR/<image>_chips.png, one panel per scale side by side, in
original-image pixels.
"""
import require_sniper  # noqa: F401  isort: skip  (first: explains a Python without mmdet_sniper)
import argparse
import os
import os.path as osp

import numpy as np
from mmengine.config import DictAction

from mmdet_sniper.engine.launch import build_train_dataset, read_config

POSITIVE, NEGATIVE, VALID, IGNORED = (60, 200, 60), (40, 40, 230), (255, 255, 255), (150, 150, 150)  # BGR


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a SNIPER training config')
    parser.add_argument('--out-dir', required=True, help='where the PNGs go')
    parser.add_argument('--images', type=int, nargs='+', default=[0], help='image indices in the training set')
    parser.add_argument('--epoch', type=int, default=0, help='whose chips (the stride and negatives vary)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args()


def draw_image(dataset, table, image: int):
    """One panel per scale of ``image``: the chips ``table`` gives it and its boxes, as a BGR array."""
    import cv2
    pyramid = dataset.pyramid
    original = cv2.imread(dataset.image_paths[image])
    if original is None:
        raise FileNotFoundError(f'cannot read image {dataset.image_paths[image]}')
    boxes = np.clip(dataset.gt_boxes[image], 0, np.tile(dataset.image_sizes[image], 2)).astype(np.float64)
    rows = np.flatnonzero(table.image_index == image)
    # The float32 factors the generator judged validity with, not a recomputed ratio.
    all_factors = pyramid.geometry(dataset.image_sizes[image:image + 1])[1][0]
    panels = []
    for scale in range(pyramid.num_scales):
        factors = all_factors[scale]
        valid = pyramid.valid(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], scale,
                              np.broadcast_to(factors, (len(boxes), 2)), table.stride) & ~dataset.gt_crowd[image]
        panel = original.copy()
        for box, ok in zip(boxes.round().astype(int), valid):
            cv2.rectangle(panel, tuple(box[:2]), tuple(box[2:]), VALID if ok else IGNORED, 1)
        at_scale = rows[table.scale_index[rows] == scale]
        for row in at_scale:
            chip = (table.chips[row] / np.tile(table.scale_factor[row], 2)).round().astype(int)
            cv2.rectangle(panel, tuple(chip[:2]), tuple(chip[2:] - 1), POSITIVE if table.positive[row] else NEGATIVE, 2)
        positive = int(table.positive[at_scale].sum())
        lo, hi = pyramid.effective_range(scale)
        title = np.full((40, panel.shape[1], 3), 255, np.uint8)
        for line, text in enumerate((f'scale {scale}: x{factors[0]:.2f}, range ({lo}, {hi})',
                                     f'{positive} positive, {len(at_scale) - positive} negative chips')):
            cv2.putText(title, text, (4, 15 + 18 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        panels.append(np.concatenate([title, panel]))
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1)


def main():
    args = parse_args()
    import cv2
    dataset = build_train_dataset(read_config(args.config, args.cfg_options))
    if not hasattr(dataset, 'chips'):
        raise ValueError(f'{args.config} does not train on a SniperDataset')
    table = dataset.chips.table(args.epoch)
    os.makedirs(args.out_dir, exist_ok=True)
    for image in args.images:
        if not 0 <= image < len(dataset.image_paths):
            raise ValueError(f'--images: {image} is not an image index (the training set has '
                             f'{len(dataset.image_paths)} images)')
        out = osp.join(args.out_dir, f'{osp.splitext(osp.basename(dataset.image_paths[image]))[0]}_chips.png')
        cv2.imwrite(out, draw_image(dataset, table, image))
        print(f'wrote {out}')


if __name__ == '__main__':
    main()
