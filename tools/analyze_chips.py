"""Statistics of SNIPER's chips for a training config: chips per image per scale, positive and
negative, how many ground-truth boxes the positive chips cover, and the pixels the chips hold
against the full image pyramid.

    python tools/analyze_chips.py configs/sniper_faster_rcnn.py --epochs 2 --out work_dirs/chips_hist.png

Reads the config's training set (its SniperDataset: chips of each epoch; proposals if the config
names them). Prints a table per epoch, and a warning for each scale whose valid range holds none
of the ground-truth boxes or that gets no chips in an epoch; with --out, writes a PNG histogram of
chips per image by scale (of the last epoch), creating its folder.
"""
import require_sniper  # noqa: F401  isort: skip  (first: explains a Python without mmdet_sniper)
import argparse
import os

import numpy as np
from mmengine.config import DictAction

from mmdet_sniper.engine.launch import build_train_dataset, read_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a SNIPER training config')
    parser.add_argument('--epochs', type=int, default=1, help='epochs to analyse, from 0')
    parser.add_argument('--out', help='PNG histogram of chips per image by scale')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args()


def chip_statistics(dataset, table) -> dict:
    """An epoch's numbers: its table's summary, plus the coverage of the boxes."""
    summary = table.summary()
    targets = sum(int((~crowd).sum()) for crowd in dataset.gt_crowd)
    valid = targets - summary['boxes_without_scale']
    summary['coverage'] = 1 - summary['uncovered_boxes'] / valid if valid else 1.0
    summary['positive_per_negative'] = summary['positive'] / summary['negative'] if summary['negative'] else None
    return summary


def format_statistics(epoch: int, table, s: dict) -> str:
    """The table's own summary, plus the positive/negative ratio and the coverage."""
    ratio = 'no negatives' if s['positive_per_negative'] is None else f'{s["positive_per_negative"]:.2f}'
    return '\n'.join([f'epoch {epoch}:', table.format_summary(), f'positive per negative chip: {ratio}',
                      f'coverage: {s["coverage"]:.4f} of the boxes valid at some scale lie in a positive chip'])


def describe_scale(pyramid, scale_index: int) -> str:
    """A scale as its config gives it, and its valid range as applied, e.g. ``x2.0, valid range [0, 48)``."""
    scale = pyramid.scales[scale_index]
    if pyramid.resolution_form:
        size = ', '.join(f'{side} side {value}' for side, value in zip(('short', 'long'), scale) if value > 0)
    elif scale_index == pyramid.num_scales - 1:
        size = f'long side {scale}'
    else:
        size = f'x{scale}'
    valid = pyramid.range_at(scale_index)
    return f'{size}, valid range [{valid.lo or 0}, {"inf" if valid.hi is None else valid.hi})'


def empty_range_warnings(dataset) -> list:
    """A warning for each scale whose valid range holds no non-crowd ground-truth box: such a scale
    trains on nothing but negatives (or gets no chips at all), which a mistyped range often causes."""
    boxes = np.concatenate([b[~c] for b, c in zip(dataset.gt_boxes, dataset.gt_crowd)]).astype(np.float64)
    sizes = np.sqrt(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0))
    span = f', sizes {sizes.min():.1f} to {sizes.max():.1f} px' if len(sizes) else ''
    pyramid = dataset.pyramid
    return [f'warning: scale {s} ({describe_scale(pyramid, s)}) holds none of the {len(sizes)} ground-truth '
            f'boxes (sqrt(w * h){span})'
            for s in range(pyramid.num_scales) if not pyramid.range_at(s).contains(sizes).any()]


def empty_scale_warnings(dataset, table, epoch: int) -> list:
    """A warning for each scale that gets no chip in the epoch's table."""
    counts = np.bincount(table.scale_index, minlength=table.num_scales)
    return [f'warning: scale {s} ({describe_scale(dataset.pyramid, s)}) gets no chips in epoch {epoch}'
            for s in range(table.num_scales) if counts[s] == 0]


def histogram(table, epoch: int, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    counts = [np.bincount(table.image_index[table.scale_index == s], minlength=table.num_images)
              for s in range(table.num_scales)]
    bins = np.arange(max(int(c.max(initial=0)) for c in counts) + 2) - 0.5
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.hist(counts, bins=bins, stacked=True, label=[f'scale {s}' for s in range(table.num_scales)])
    axis.set_xlabel('chips of the image at the scale')
    axis.set_ylabel('images (stacked by scale)')
    axis.set_title(f'SNIPER chips per image, epoch {epoch}')
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    args = parse_args()
    if args.epochs < 1:
        raise ValueError(f'--epochs must be at least 1, got {args.epochs}')
    if args.out and os.path.dirname(args.out):
        # Before the chips are made, which can take long, rather than failing after them.
        try:
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
        except OSError as error:
            raise SystemExit(f'--out: cannot create the folder of {args.out}: {error}')
    dataset = build_train_dataset(read_config(args.config, args.cfg_options))
    if not hasattr(dataset, 'chips'):
        raise ValueError(f'{args.config} does not train on a SniperDataset')
    for warning in empty_range_warnings(dataset):
        print(warning)
    for epoch in range(args.epochs):
        table = dataset.chips.table(epoch)
        print(format_statistics(epoch, table, chip_statistics(dataset, table)))
        for warning in empty_scale_warnings(dataset, table, epoch):
            print(warning)
    if args.out:
        histogram(table, epoch, args.out)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
