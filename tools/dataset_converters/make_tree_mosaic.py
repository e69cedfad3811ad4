"""Builds one large image from the tree validation regions, with their crowns, to test on an image far
larger than the detector takes whole.

    python tools/dataset_converters/make_tree_mosaic.py data/trees_mosaic [--size 4000] [--source data/trees/val]

Reads SOURCE/annotations.json and SOURCE/images/ (COCO, as prepare_tree_data.py writes them). Writes
OUT/images/mosaic.png and OUT/annotations.json: the source images pasted whole, row by row, each row
starting one image further along the list and cycling through it until the row is at least --size px
wide, rows added until the mosaic is at least --size px high. Images are never cut, so no crown is;
where the images of a row differ in height, and at the end of the shorter rows, the mosaic is black.
Every annotation (crowd boxes too) is copied, shifted by its image's offset, with a new id. The result
depends only on the source and --size. The mosaic holds every source crown many times (the count is
printed): test it with a detection cap above that count (benchmark_inference_peers.py --max-dets).
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np

MOSAIC_NAME = 'mosaic.png'


def mosaic_layout(sizes, min_size):
    """Where each copy of the source images goes.

    Args:
        sizes (list[tuple[int, int]]): ``(width, height)`` of every source image, in order.
        min_size (int): the mosaic's least width and height, px.

    Returns:
        tuple: ``placements``, a list of ``(index, x, y)`` (the source image's index and its top-left
        corner in the mosaic), and ``(width, height)`` of the mosaic.
    """
    if not sizes:
        raise ValueError('sizes must hold at least one (width, height)')
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f'min_size must be an int >= 1 (pixels), got {min_size!r}')
    placements, width, y, row = [], 0, 0, 0
    while y < min_size:
        # Each row starts one image further, so that a column does not repeat the same image.
        index, x, row_height = row % len(sizes), 0, 0
        while x < min_size:
            placements.append((index, x, y))
            x += sizes[index][0]
            row_height = max(row_height, sizes[index][1])
            index = (index + 1) % len(sizes)
        width = max(width, x)
        y += row_height
        row += 1
    return placements, (width, y)


def mosaic_coco(coco, placements, size, file_name=MOSAIC_NAME):
    """The COCO dict of the mosaic: one image, every placed image's annotations shifted onto it."""
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    images = coco['images']
    annotations = []
    for index, x, y in placements:
        for ann in by_image.get(images[index]['id'], []):
            bx, by, bw, bh = ann['bbox']
            annotations.append({**ann, 'id': len(annotations) + 1, 'image_id': 1, 'bbox': [bx + x, by + y, bw, bh]})
    width, height = size
    return dict(images=[dict(id=1, file_name=file_name, width=width, height=height)], annotations=annotations,
                categories=coco['categories'])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='output folder: OUT/images/mosaic.png and OUT/annotations.json')
    parser.add_argument('--size', type=int, default=4000, help='least width and height of the mosaic, px')
    parser.add_argument('--source', default='data/trees/val', help='COCO folder whose images are tiled')
    args = parser.parse_args()
    if args.size < 1:
        parser.error(f'--size must be >= 1, got {args.size}')
    with open(osp.join(args.source, 'annotations.json')) as f:
        coco = json.load(f)
    sources = []
    for info in coco['images']:
        path = osp.join(args.source, 'images', info['file_name'])
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f'cannot read {path}')
        if image.shape[:2] != (info['height'], info['width']):
            raise SystemExit(f'{path} is {image.shape[1]}x{image.shape[0]}, annotations.json says '
                             f'{info["width"]}x{info["height"]}')
        sources.append(image)
    placements, (width, height) = mosaic_layout([(i.shape[1], i.shape[0]) for i in sources], args.size)
    mosaic = np.zeros((height, width, 3), np.uint8)
    for index, x, y in placements:
        h, w = sources[index].shape[:2]
        mosaic[y:y + h, x:x + w] = sources[index]
    out = mosaic_coco(coco, placements, (width, height))
    os.makedirs(osp.join(args.out, 'images'), exist_ok=True)
    cv2.imwrite(osp.join(args.out, 'images', MOSAIC_NAME), mosaic)
    with open(osp.join(args.out, 'annotations.json'), 'w') as f:
        json.dump(out, f)
    crowns = sum(not a.get('iscrowd', 0) for a in out['annotations'])
    print(f'{args.out}: one {width}x{height} mosaic of {len(placements)} copies of the {len(sources)} images of '
          f'{args.source}, {crowns} crowns ({len(out["annotations"]) - crowns} crowd boxes)')


if __name__ == '__main__':
    main()
