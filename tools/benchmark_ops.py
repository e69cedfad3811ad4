"""Times the chip ops: the pure-torch reference against the compiled CPU kernels (and the CUDA
kernels when a GPU is present) on SNIPER-sized inputs, and prints a markdown table.

Inputs: `--batch` images of `--image-size` pixels, each with the candidate chips of one scale
(`--chip-size` windows at `--stride`, plus windows flush with the right and bottom edges), and
`--boxes` random ground-truth boxes per image. Reads and writes no files.

    python tools/benchmark_ops.py                 # 64 images, 2000x1400, 10 and 100 boxes
"""
import argparse

import torch
from torch.utils import benchmark

from mmdet_sniper.ops import chip_coverage, clip_boxes_to_chips, greedy_chip_cover, reference


def candidate_chips(batch, width, height, size, stride):
    """float32 [batch, K, 4]: windows slid at `stride`, plus windows flush with the far edges."""
    def starts(extent):
        last = max(extent - size, 0)
        return sorted(set(range(0, last + 1, stride)) | {last})

    corners = torch.tensor([(x, y) for y in starts(height) for x in starts(width)], dtype=torch.float32)
    return torch.cat([corners, corners + size], dim=-1).expand(batch, -1, -1).contiguous()


def random_gt_boxes(gen, batch, count, width, height):
    """float32 [batch, count, 4]: boxes of 8 to ~400 px (log-uniform) inside a width x height image."""
    wh = torch.exp(torch.empty(batch, count, 2).uniform_(2.08, 6.0, generator=gen))
    wh = torch.minimum(wh, torch.tensor([width - 1.0, height - 1.0]))
    xy = torch.rand(batch, count, 2, generator=gen) * (torch.tensor([width, height]) - wh)
    return torch.cat([xy, xy + wh], dim=-1)


def median_ms(fn, min_run_time):
    # Timer runs single-threaded unless told otherwise; time both sides with all intra-op threads.
    timer = benchmark.Timer(stmt='fn()', globals={'fn': fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def check_same(name, got, expected):
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.cpu(), e.cpu(), msg=lambda m: f'{name}: kernel and reference differ: {m}')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--image-size', type=int, nargs=2, default=(2000, 1400), metavar=('W', 'H'))
    parser.add_argument('--chip-size', type=int, default=512)
    parser.add_argument('--stride', type=int, default=32)
    parser.add_argument('--boxes', type=int, nargs='+', default=(10, 100))
    parser.add_argument('--min-run-time', type=float, default=1.0, help='seconds of timing per cell')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    width, height = args.image_size
    chips = candidate_chips(args.batch, width, height, args.chip_size, args.stride)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    gen = torch.Generator().manual_seed(args.seed)
    print(f'{args.batch} images of {width}x{height}, {chips.shape[1]} candidate chips of {args.chip_size} px at '
          f'stride {args.stride} per image; torch {torch.__version__}, {torch.get_num_threads()} CPU threads'
          + (f', {torch.cuda.get_device_name()}' if 'cuda' in devices else ''))
    columns = ['op', 'boxes/image', 'reference CPU (ms)', 'C++ CPU (ms)', 'C++ speed-up']
    columns += ['reference CUDA (ms)', 'CUDA (ms)'] if 'cuda' in devices else []
    print()
    print('| ' + ' | '.join(columns) + ' |')
    print('|' + '---|' * len(columns))
    for count in args.boxes:
        boxes = random_gt_boxes(gen, args.batch, count, width, height)
        covers = chip_coverage(chips, boxes) >= 1 - 1e-6
        cases = [
            ('chip_coverage', chip_coverage, reference.chip_coverage, (chips, boxes)),
            ('greedy_chip_cover', greedy_chip_cover, reference.greedy_chip_cover, (covers,)),
            ('clip_boxes_to_chips', clip_boxes_to_chips, reference.clip_boxes_to_chips, (boxes, chips)),
        ]
        for name, op, ref, inputs in cases:
            row = []
            for device in devices:
                on_device = tuple(t.to(device) for t in inputs)
                check_same(name, op(*on_device), ref(*on_device))
                row.append((median_ms(lambda: ref(*on_device), args.min_run_time),
                            median_ms(lambda: op(*on_device), args.min_run_time)))
            ref_cpu, op_cpu = row[0]
            cells = [name, str(count), f'{ref_cpu:.2f}', f'{op_cpu:.2f}', f'{ref_cpu / op_cpu:.1f}x']
            if len(row) > 1:
                cells += [f'{row[1][0]:.2f}', f'{row[1][1]:.3f}']
            print('| ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
