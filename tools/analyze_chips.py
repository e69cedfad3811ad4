"""Statistics of SNIPER's chips for a training config: chips per image per scale, positive and
negative, how many ground-truth boxes the positive chips cover, and the pixels the chips hold
against the full image pyramid.

    python tools/analyze_chips.py configs/sniper_faster_rcnn.py --epochs 2 --out work_dirs/chips_hist.png

Reads the config's training set (its SniperDataset: chips of each epoch; proposals if the config
names them). Prints a table per epoch; with --out, writes a PNG histogram of chips per image by
scale (of the last epoch).
"""
import argparse

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
    dataset = build_train_dataset(read_config(args.config, args.cfg_options))
    if not hasattr(dataset, 'chips'):
        raise ValueError(f'{args.config} does not train on a SniperDataset')
    for epoch in range(args.epochs):
        table = dataset.chips.table(epoch)
        print(format_statistics(epoch, table, chip_statistics(dataset, table)))
    if args.out:
        histogram(table, epoch, args.out)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
