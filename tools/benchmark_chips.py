"""Times SNIPER chip generation, positive and negative chips, on synthetic COCO-like data: the
batched path through the compiled ops (CPU, one thread; and CUDA when a GPU is present) against the
pure-Python implementation of docs/chip_generation.md kept in tests/chips/python_chips.py. Prints a
markdown table; reads and writes no files.

Workload: ``--images`` images of 640x480 with Poisson(7) boxes (sides log-uniform 8..400 px, aspect
0.5..2) and 300 proposals each. The pure-Python implementation runs on the first ``--python-images``
(it takes tens of milliseconds per image); both must produce the same chips there.

    python tools/benchmark_chips.py                   # 5000 images, Python on 200
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mmdet_sniper.chips import ChipGenerator
from mmdet_sniper.testing import random_chip_workload

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.chips import python_chips  # noqa: E402

SETTINGS = dict(scales=(3.0, 1.667, 512), valid_ranges=((-1, 80), (32, 150), (120, -1)), chip_size=512)


def batched(workload, device, repeats):
    """Best-of-``repeats`` seconds for positive chips and for negative chips (pool and sampling)."""
    generator = ChipGenerator(**SETTINGS, device=device, workers=1)  # one core: the rows say so
    best_positive = best_negative = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        positive = generator.generate_positive(workload.image_sizes, workload.gt_boxes, workload.gt_crowd)
        middle = time.perf_counter()
        pool = generator.generate_negative(workload.image_sizes, workload.proposals, positive, workload.gt_boxes,
                                           workload.gt_crowd)
        generator.sample_negative(pool)
        if device != 'cpu':
            torch.cuda.synchronize()
        end = time.perf_counter()
        best_positive, best_negative = min(best_positive, middle - start), min(best_negative, end - middle)
    return best_positive, best_negative, positive, pool


def pure_python(workload, count):
    sizes = [tuple(s) for s in workload.image_sizes[:count].tolist()]
    gt = [b.tolist() for b in workload.gt_boxes[:count]]
    crowd = [c.tolist() for c in workload.gt_crowd[:count]]
    start = time.perf_counter()
    positive = python_chips.positive_chips(sizes, gt, crowd, **SETTINGS, chip_stride=(56, 60))
    middle = time.perf_counter()
    pool = python_chips.negative_chip_pool(sizes, [p.tolist() for p in workload.proposals[:count]], positive, gt,
                                           crowd, **SETTINGS)
    python_chips.sample_negative_chips(pool, len(sizes), 2)
    end = time.perf_counter()
    return middle - start, end - middle, positive['chips'], pool


def rows(table, count):
    keep = table.image_index < count
    return [(int(i), int(s), float(f[0]), float(f[1]), *map(float, c), int(n))
            for i, s, f, c, n in zip(table.image_index[keep], table.scale_index[keep], table.scale_factor[keep],
                                     table.chips[keep], table.box_count[keep])]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--python-images', type=int, default=200)
    parser.add_argument('--repeats', type=int, default=5, help='timed runs of the batched path; the best counts')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)  # the target is per core
    workload = random_chip_workload(args.images, np.random.default_rng(args.seed))
    n = args.images
    print(f'{n} images 640x480, {sum(map(len, workload.gt_boxes)) / n:.1f} boxes and '
          f'{sum(map(len, workload.proposals)) / n:.0f} proposals per image; CPU timings on 1 thread\n')
    print('| path | images | positive ms/image | negative ms/image | total ms/image | chips/image (pos + neg pool) |')
    print('|---|---|---|---|---|---|')
    results = [('batched C++ ops, CPU', 'cpu')]
    if torch.cuda.is_available():
        results.append((f'batched ops, {torch.cuda.get_device_name()}', 'cuda'))
    tables = {}
    for name, device in results:
        if device == 'cuda':
            batched(workload, device, 1)  # warm-up: CUDA context and kernels
        positive_s, negative_s, positive, pool = batched(workload, device, args.repeats)
        tables[device] = (positive, pool)
        print(f'| {name} | {n} | {1e3 * positive_s / n:.4f} | {1e3 * negative_s / n:.4f} | '
              f'{1e3 * (positive_s + negative_s) / n:.4f} | {(len(positive) + len(pool)) / n:.2f} |')
    m = min(args.python_images, n)
    if m:
        positive_s, negative_s, python_positive, python_pool = pure_python(workload, m)
        print(f'| pure Python (tests/chips/python_chips.py) | {m} | {1e3 * positive_s / m:.2f} | '
              f'{1e3 * negative_s / m:.2f} | {1e3 * (positive_s + negative_s) / m:.2f} | '
              f'{(len(python_positive) + len(python_pool)) / m:.2f} |')
        for device, (positive, pool) in tables.items():
            same = rows(positive, m) == python_positive and rows(pool, m) == python_pool
            print(f'\n{device}: chips on the first {m} images {"identical to" if same else "DIFFER FROM"} '
                  'the pure-Python implementation')
    positive, pool = tables['cpu']
    print(f'\npositive chips:\n{positive.format_summary()}\n\nnegative chip pool:\n{pool.format_summary()}')


if __name__ == '__main__':
    main()
