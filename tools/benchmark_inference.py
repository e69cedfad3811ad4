"""Inference speed of SNIPER's multi-scale test: whole views against 256-px tiles, with a per-scale breakdown.

Builds the tiny Faster R-CNN of configs/sniper_faster_rcnn_r18_tiny_cpu.py with random weights (the speed
does not depend on them, the number of detections merged barely) and wraps it in SniperTestTimeAug with the
authors' Gaussian soft-NMS merge. Writes synthetic JPEGs into a temporary folder (nothing else is
written): --images images of 640x480, and one of 2000x1500, then times, per image:

- full: each view (the image at one scale, and its horizontal flip) through the detector whole;
- sliced: each view cut into 256-px tiles (default overlap), tiles_per_batch at a time;

for all three scales together (the merge included) and for each scale's two views alone. The 640x480
images use the tiny config's test scales (SniperTestViews in its tta_pipeline): short side 960 (long side
<= 1280, 2x), 480 (1x), and the long side at 256; the 2000x1500 image, as aerial images are tested, 1x,
0.5x and the long side at 256. Both use the config's valid ranges. The data
pipeline (decode, resize, flip, pack) runs once before timing and is not counted. Each row is the best of
--repeat passes after a warm-up, with one torch thread and with torch's default thread count.

    python tools/benchmark_inference.py [--images 4] [--device cuda] [--repeat 2]
"""
import argparse
import os.path as osp
import tempfile
import time

import torch

CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'sniper_faster_rcnn_r18_tiny_cpu.py')
AERIAL_SCALES = (1.0, 0.5, (256, 256))
CHIP_SIZE = 256
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction', 'valid_range')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=4, help='synthetic 640x480 images (besides one 2000x1500)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='torch device of the detector (default: cuda if available)')
    parser.add_argument('--repeat', type=int, default=2, help='timed passes; the best is reported')
    parser.add_argument('--tiles-per-batch', type=int, default=8, help='tiles per detector call in sliced mode')
    return parser.parse_args()


def pipeline(resizes, ranges):
    from mmengine.dataset import Compose
    return Compose([
        dict(type='LoadImageFromFile'),
        dict(type='TestTimeAug', transforms=[
            [dict(type='SniperTestScale', valid_range=r, **resize) for resize, r in zip(resizes, ranges)
             if resize is not None],
            [dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)],
            [dict(type='PackDetInputs', meta_keys=META_KEYS)]])])


def seconds_per_image(model, batches, repeat, device):
    def one_pass():
        start = time.perf_counter()
        with torch.no_grad():
            for batch in batches:
                model.test_step(batch)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    one_pass()  # warm-up: allocator, cudnn, lazy imports
    return min(one_pass() for _ in range(repeat)) / len(batches)


def main():
    args = parse_args()
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.utils import track_iter_progress

    import mmdet_sniper  # noqa: F401  (registers the SNIPER modules)
    from mmdet_sniper.models.sniper_tta import SniperTestTimeAug
    from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco
    from mmdet_sniper.transforms.test_scale import resize_args
    register_all_modules()

    cfg = Config.fromfile(CONFIG)
    test_views = next(t for t in cfg.tta_pipeline if t['type'] == 'SniperTestViews')
    ranges = test_views['valid_ranges']
    image_sets = (  # (name, (width, height), per scale SniperTestScale's resize arguments)
        ('640x480', (640, 480), [resize_args(s) for s in test_views['scales']]),
        ('2000x1500', (2000, 1500), [resize_args(s) for s in AERIAL_SCALES]))

    torch.manual_seed(0)
    detector = MODELS.build(cfg.model).to(args.device).eval()
    models = {sliced: SniperTestTimeAug(module=detector, sliced=sliced, chip_size=CHIP_SIZE,
                                        tiles_per_batch=args.tiles_per_batch)
              for sliced in (False, True)}
    thread_counts = sorted({1, torch.get_num_threads()})

    with tempfile.TemporaryDirectory() as root:
        jobs = []
        for (name, size, resizes), count in zip(image_sets, (args.images, 1)):
            folder = osp.join(root, name)
            write_synthetic_coco(folder, count, seed=0, image_size=size, size_range=(8, 400))
            paths = [osp.join(folder, 'images', f'{i:06d}.jpg') for i in range(count)]
            # All scales, then each scale alone.
            subsets = [resizes] + [[r if i == j else None for j, r in enumerate(resizes)] for i in range(3)]
            batches = [[pseudo_collate([pipeline(subset, ranges)(dict(img_path=path, img_id=i))]) for i, path in
                        enumerate(paths)] for subset in subsets]
            tiles = sum(len(models[True].tile_grid(samples[0])) for samples in batches[0][0]['data_samples'])
            for sliced in (False, True):
                for threads in thread_counts:
                    jobs.append((name, count, sliced, threads, batches, tiles))

        rows = []
        for name, count, sliced, threads, batches, tiles in track_iter_progress(jobs):
            torch.set_num_threads(threads)
            times = [seconds_per_image(models[sliced], subset, args.repeat, args.device) for subset in batches]
            rows.append((name, count, 'sliced' if sliced else 'full', threads, tiles if sliced else '-', times))

    print(f'\ntiny SNIPER Faster R-CNN (random weights) on {args.device}, torch {torch.__version__}; 3 scales x 2 '
          f'flips per image, Gaussian soft-NMS merge, tiles of {CHIP_SIZE} px, {args.tiles_per_batch} per call')
    print(f'{"images":>10s} {"n":>3s} {"mode":>6s} {"threads":>7s} {"tiles/img":>9s} {"images/s":>9s} '
          f'{"ms/img":>8s} {"scale 1 ms":>10s} {"scale 2 ms":>10s} {"scale 3 ms":>10s}')
    for name, count, mode, threads, tiles, (total, *per_scale) in rows:
        scales = ' '.join(f'{1000 * t:10.1f}' for t in per_scale)
        print(f'{name:>10s} {count:3d} {mode:>6s} {threads:7d} {tiles!s:>9s} {1 / total:9.2f} {1000 * total:8.1f} '
              f'{scales}')


if __name__ == '__main__':
    main()
