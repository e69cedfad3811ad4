"""Writes the synthetic detection dataset the tiny CPU config trains on (COCO format).

    python tools/make_synthetic_data.py data/synthetic --train 40 --val 10
    python tools/make_synthetic_data.py data/small_objects --widths 600 900 --heights 500 700 --object-sizes 6 40

Writes OUT/train and OUT/val, each with images/*.jpg and annotations.json: images of three shape
classes on a cluttered background, by default 200..640 x 150..480 px with objects of 8 to 150 px
(sqrt(w * h)). Nothing is rewritten if both splits already hold the requested number of images.
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
    parser.add_argument('--widths', type=int, nargs=2, default=(200, 640), help='image width range, px')
    parser.add_argument('--heights', type=int, nargs=2, default=(150, 480), help='image height range, px')
    parser.add_argument('--object-sizes', type=float, nargs=2, default=(8, 150), help='object size range, px')
    args = parser.parse_args()
    for split, count, seed in (('train', args.train, args.seed), ('val', args.val, args.seed + 1)):
        ann_file = osp.join(args.out, split, 'annotations.json')
        if osp.exists(ann_file):
            with open(ann_file) as f:
                if len(json.load(f)['images']) == count:
                    print(f'{ann_file}: {count} images, already there')
                    continue
        write_synthetic_coco(osp.join(args.out, split), count, seed=seed,
                             image_size=(tuple(args.widths), tuple(args.heights)), size_range=tuple(args.object_sizes))
        print(f'wrote {ann_file}: {count} images')


if __name__ == '__main__':
    main()
