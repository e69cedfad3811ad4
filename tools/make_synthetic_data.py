"""Writes the synthetic detection dataset the tiny CPU config trains on (COCO format).

    python tools/make_synthetic_data.py data/synthetic --train 40 --val 10

Writes OUT/train and OUT/val, each with images/*.jpg and annotations.json: 200..640 x 150..480 px
images of three shape classes from 8 to 150 px on a cluttered background. Nothing is rewritten if
both splits already hold the requested number of images.
"""
import argparse
import json
import os.path as osp

from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='output folder')
    parser.add_argument('--train', type=int, default=40, help='training images')
    parser.add_argument('--val', type=int, default=10, help='validation images')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    for split, count, seed in (('train', args.train, args.seed), ('val', args.val, args.seed + 1)):
        ann_file = osp.join(args.out, split, 'annotations.json')
        if osp.exists(ann_file):
            with open(ann_file) as f:
                if len(json.load(f)['images']) == count:
                    print(f'{ann_file}: {count} images, already there')
                    continue
        write_synthetic_coco(osp.join(args.out, split), count, seed=seed, image_size=((200, 640), (150, 480)),
                             size_range=(8, 150))
        print(f'wrote {ann_file}: {count} images')


if __name__ == '__main__':
    main()
