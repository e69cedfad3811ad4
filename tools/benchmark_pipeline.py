"""Data pipeline throughput of SNIPER chips against mmdet's whole-image resizing at the same scales.

Writes a synthetic COCO-format dataset of 640x480 JPEGs (objects of 8..400 px), then times, in one
process with one thread (a DataLoader worker):

- SNIPER: every chip of the epoch through SniperDataset's pipeline (decode, CropChip, flip, pack), in
  ChipAwareSampler's order: chips shuffled, and grouped by image (decoded once per image);
- mmdet: every image through LoadImageFromFile, Resize, RandomFlip, PackDetInputs at each of the
  three scales, as 3-scale full-image training sees it.

The images-equivalent throughput of SNIPER is chips/s divided by chips per image: the images whose
chips a worker prepares per second.

    python tools/benchmark_pipeline.py --images 200
"""
import argparse
import tempfile
import time

import cv2
import torch

SCALES = (3.0, 1.667, 512)  # the authors' COCO pyramid: factors, then the longest side in pixels
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction', 'chip',
             'chip_scale_index', 'chip_valid_range', 'chip_positive')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=200, help='synthetic 640x480 images')
    parser.add_argument('--repeat', type=int, default=3, help='timed passes; the best is reported')
    return parser.parse_args()


def coco(root, pipeline):
    return dict(type='CocoDataset', data_root=root, ann_file='annotations.json', data_prefix=dict(img='images/'),
                metainfo=dict(classes=('square', 'disc', 'bar')), pipeline=pipeline)


def best_time(run, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    args = parse_args()
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    import mmdet_sniper  # noqa: F401  (registers the SNIPER modules)
    from mmdet_sniper.samplers import ChipAwareSampler
    from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco
    register_all_modules()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)  # as mmengine sets it in DataLoader workers

    with tempfile.TemporaryDirectory() as root:
        write_synthetic_coco(root, args.images, seed=0, image_size=(640, 480), objects_per_image=(3, 12),
                             size_range=(8, 400))
        sniper = DATASETS.build(dict(
            type='SniperDataset', scales=SCALES, cache_dir=None,
            dataset=coco(root, [dict(type='CachedLoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                                dict(type='CropChip'), dict(type='RandomFlip', prob=0.5),
                                dict(type='PackDetInputs', meta_keys=META_KEYS)])))
        table = sniper.chips.table(0)
        chips_per_image = len(table) / args.images
        print(f'{args.images} images of 640x480, {len(table)} chips ({chips_per_image:.2f} per image), one thread; '
              f'chip pixels / 3-scale pyramid pixels: {table.summary()["pixel_ratio"]:.3f}')
        rows = []
        for name, grouped in (('SNIPER chips, shuffled', False), ('SNIPER chips, grouped by image', True)):
            keys = list(ChipAwareSampler(sniper, shuffle=True, seed=0, group_by_image=grouped))
            seconds = best_time(lambda: [sniper[key] for key in keys], args.repeat)
            chips_per_s = len(keys) / seconds
            rows.append((name, chips_per_s, chips_per_s / chips_per_image))

        resizes = [dict(type='Resize', scale_factor=s, keep_ratio=True) for s in SCALES[:-1]]
        resizes.append(dict(type='Resize', scale=(SCALES[-1], SCALES[-1]), keep_ratio=True))
        full = [DATASETS.build(coco(root, [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                                           resize, dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]))
                for resize in resizes]
        seconds = best_time(lambda: [dataset[i] for dataset in full for i in range(args.images)], args.repeat)
        baseline = args.images / seconds
        rows.append(('mmdet whole image at 3 scales', 3 * args.images / seconds, baseline))

        print(f'{"pipeline":34s} {"samples/s":>10s} {"images/s":>9s} {"vs 3-scale":>10s}')
        for name, samples_per_s, images_per_s in rows:
            print(f'{name:34s} {samples_per_s:10.1f} {images_per_s:9.1f} {images_per_s / baseline:9.2f}x')


if __name__ == '__main__':
    main()
