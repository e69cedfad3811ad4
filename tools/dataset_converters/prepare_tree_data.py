"""Builds the aerial tree-crown dataset (COCO, one class ``tree``) from the images in the deepforest wheel.

    python tools/dataset_converters/prepare_tree_data.py data/trees

Reads the deepforest==2.1.0 wheel, downloaded once with pip into OUT/.cache/ (deepforest is not
installed): four aerial RGB images of deepforest/data and their Pascal VOC boxes. Writes
OUT/{train,val}/images/*.png, crops of regions of those images split so that no crown is a target
in both splits (crowns cut by a region border are iscrowd boxes in the neighbouring region; see
tree_crowns.py beside this script), OUT/{train,val}/annotations.json and OUT/.stamp.json. Does
nothing if the stamp records the same wheel and split; --force rebuilds.
"""
import argparse
import dataclasses
import json
import os
import os.path as osp
import shutil
import sys
import zipfile

import cv2
import numpy as np
from tree_crowns import TREE_SPLIT, build_coco, coco_stats, parse_voc, split_image  # beside this script

# fetch_wheel is shared with tools/model_converters; Python puts only this script's folder on sys.path.
sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'misc'))
from wheels import fetch_wheel  # noqa: E402

WHEEL = 'deepforest==2.1.0'
SPLITS = ('train', 'val')


def build(out, wheel):
    for split in SPLITS:
        shutil.rmtree(osp.join(out, split), ignore_errors=True)
        os.makedirs(osp.join(out, split, 'images'))
    items = {split: [] for split in SPLITS}
    with zipfile.ZipFile(wheel) as zf:
        for source in TREE_SPLIT:
            member = f'deepforest/data/{source.stem}'
            voc = parse_voc(zf.read(f'{member}.xml'), f'{member}.xml')
            image = cv2.imdecode(np.frombuffer(zf.read(f'{member}.png'), np.uint8), cv2.IMREAD_COLOR)
            if image.shape[:2] != (voc.height, voc.width):
                sys.exit(f'{member}.png is {image.shape[1]}x{image.shape[0]}, its xml says {voc.width}x{voc.height}')
            for split, stem, shown in split_image(voc, source):
                r = shown.region
                cv2.imwrite(osp.join(out, split, 'images', f'{stem}.png'), image[r.y0:r.y1, r.x0:r.x1])
                items[split].append((f'{stem}.png', shown))
    for split in SPLITS:
        coco = build_coco(items[split])
        with open(osp.join(out, split, 'annotations.json'), 'w') as f:
            json.dump(coco, f)
        stats = coco_stats(coco)
        print(f'{split}: {stats["images"]} images, {stats["crowns"]} crowns, {stats["crowd"]} crowd boxes; '
              f'crown size sqrt(w*h) px percentiles {stats["size_percentiles"]}, '
              f'{stats["share_below_32"]:.0%} below 32 px')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='output folder, e.g. data/trees')
    parser.add_argument('--force', action='store_true', help='rebuild even if the stamp matches')
    args = parser.parse_args()
    stamp_file = osp.join(args.out, '.stamp.json')
    # The stamp holds what the output depends on; it is written last, so an interrupted build reruns.
    stamp = dict(wheel=WHEEL, split=[dataclasses.asdict(source) for source in TREE_SPLIT])
    stamp = json.loads(json.dumps(stamp))  # tuples as lists, to compare with the file
    ann_files = [osp.join(args.out, split, 'annotations.json') for split in SPLITS]
    if not args.force and all(map(osp.exists, ann_files + [stamp_file])):
        with open(stamp_file) as f:
            if json.load(f) == stamp:
                print(f'{args.out}: already built from {WHEEL} with this split, nothing to do')
                return
    build(args.out, fetch_wheel(WHEEL, osp.join(args.out, '.cache')))
    with open(stamp_file, 'w') as f:
        json.dump(stamp, f, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
