"""Generates the SNIPER chips of a COCO-format dataset and prints their statistics.

Reads a COCO annotation file (any mmengine.fileio backend) and, optionally, a proposals file: a
pickle or JSON mapping each image id to its proposals, ``[P, 4]`` or ``[P, 5]`` (x1, y1, x2, y2[,
score]) in original-image pixels. Writes the chip table (``.npz``, see ``mmdet_sniper.chips.ChipTable``):
the positive chips and, with proposals, the epoch's sampled negative chips.

    python tools/generate_chips.py data/coco/annotations/instances_train2017.json --out work_dirs/chips.npz
    python tools/generate_chips.py ANN --proposals proposals.pkl --scales 1400,2000 800,1280 -1,512
"""
import argparse
from collections import defaultdict

import numpy as np
from mmengine import fileio

from mmdet_sniper.chips import ChipGenerator, ChipTable
from mmdet_sniper.chips.proposals import load_proposals


def parse_scale(text: str):
    """'3.0' -> 3.0 (a factor), '1400,2000' -> (1400, 2000) (min_side, max_side)."""
    parts = text.split(',')
    if len(parts) == 1:
        return float(parts[0])
    if len(parts) == 2:
        return (int(parts[0]), int(parts[1]))
    raise argparse.ArgumentTypeError(f'a scale is a factor or min_side,max_side; got {text!r}')


def parse_range(text: str):
    try:
        lo, hi = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'a valid range is lo,hi (-1: unbounded); got {text!r}') from None
    return (lo, hi)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_file', help='COCO-format annotation file')
    parser.add_argument('--proposals', help='proposals per image id (pickle or JSON); enables negative chips')
    parser.add_argument('--out', default='chips.npz', help='where to write the chip table (default: chips.npz)')
    parser.add_argument('--scales', nargs='+', type=parse_scale, default=[3.0, 1.667, 512.0],
                        help='finest first: factors with the last one the longest side in pixels, or '
                             'min_side,max_side pairs (default: 3.0 1.667 512)')
    parser.add_argument('--valid-ranges', nargs='+', type=parse_range, default=[(-1, 80), (32, 150), (120, -1)],
                        help='lo,hi per scale in original pixels of sqrt(w*h) (default: -1,80 32,150 120,-1)')
    parser.add_argument('--chip-size', type=int, default=512)
    parser.add_argument('--chip-stride', type=int, nargs='+', default=[56, 60],
                        help='a stride, or lo hi to draw lo..hi-1 per epoch (default: 56 60)')
    parser.add_argument('--neg-per-image', type=int, default=2, help='negative chips drawn per image (default: 2)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--epoch', type=int, default=0)
    parser.add_argument('--device', default='cpu', help='where the chip ops run, e.g. cuda (default: cpu)')
    return parser.parse_args()


def load_coco(ann_file):
    """Image ids, sizes, and per image its boxes (x1, y1, x2, y2), crowd flags and annotation ids."""
    coco = fileio.load(ann_file)
    images = coco.get('images') or []
    if not images:
        raise ValueError(f'{ann_file} lists no images')
    index = {image['id']: i for i, image in enumerate(images)}
    per_image = defaultdict(list)
    for ann in coco.get('annotations', []):
        if ann['image_id'] not in index:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")} refers to image {ann["image_id"]}, '
                             'which is not in its images')
        per_image[index[ann['image_id']]].append(ann)
    boxes, crowd, ann_ids = [], [], []
    for i in range(len(images)):
        anns = per_image[i]
        xywh = np.array([a['bbox'] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes.append(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1).astype(np.float32))
        crowd.append(np.array([bool(a.get('iscrowd', 0)) for a in anns], dtype=bool))
        ann_ids.append([a.get('id') for a in anns])
    sizes = np.array([[image['width'], image['height']] for image in images], dtype=np.int64)
    return [image['id'] for image in images], sizes, boxes, crowd, ann_ids


def main():
    args = parse_args()
    stride = args.chip_stride[0] if len(args.chip_stride) == 1 else tuple(args.chip_stride)
    generator = ChipGenerator(scales=args.scales, valid_ranges=args.valid_ranges, chip_size=args.chip_size,
                              chip_stride=stride, neg_chips_per_image=args.neg_per_image, device=args.device)
    image_ids, sizes, boxes, crowd, ann_ids = load_coco(args.ann_file)
    print(f'{len(image_ids)} images, {sum(len(b) for b in boxes)} boxes; positive chips:')
    table = generator.generate_positive(sizes, boxes, crowd, seed=args.seed, epoch=args.epoch, progress=True)
    print()
    if args.proposals:
        proposals = load_proposals(args.proposals, image_ids)
        print('negative chips:')
        pool = generator.generate_negative(sizes, proposals, table, boxes, crowd, seed=args.seed, epoch=args.epoch,
                                           progress=True)
        print(f'\nnegative chip pool: {len(pool)} chips, {len(pool) / max(len(sizes), 1):.2f} per image')
        table = ChipTable.concat([table, generator.sample_negative(pool, seed=args.seed, epoch=args.epoch)])
    print(table.format_summary())
    for name, listed in (('held by no positive chip', table.uncovered_boxes),
                         ('valid at no scale', table.boxes_without_scale)):
        if len(listed):
            examples = [f'image {image_ids[i]} annotation {ann_ids[i][j]}' for i, j in listed[:5].tolist()]
            print(f'{len(listed)} boxes {name}, e.g. ' + '; '.join(examples))
    table.save(args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
