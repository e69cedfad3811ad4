"""Proposes SNIPER's settings for a COCO-format dataset and writes its RPN and detector configs.

Reads the training annotation file (and the validation one, if given), prints the object sizes
(``sqrt(w * h)`` in original pixels) as a table, draws them as a histogram (``--out-dir``), and
proposes the scales, valid ranges, chip size and stride, test scales and ranges and proposal scales,
with the reason for each. It then makes the chips of the first epoch to check that every box is
covered and to size the schedule in iterations. With ``--write-configs DIR`` it writes
``DIR/sniper_rpn_<name>.py`` and ``DIR/sniper_faster_rcnn_<name>.py``, which inherit this project's
configs and set every key a dataset needs (data, classes, evaluator, test views, proposal scales,
schedule, warm-up, checkpoints). The rules: docs/own_data.md.

    python tools/configure_sniper.py data/mine/train.json --val data/mine/val.json \\
        --write-configs configs/mine --gpus 8
    python tools/configure_sniper.py data/mine/train.json --cpu --write-configs configs/mine
"""
import require_sniper  # noqa: F401  isort: skip  (first: explains a Python without mmdet_sniper)
import argparse
import json
import math
import os
import os.path as osp
import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Each scale trains the objects whose size in its chips lies in [chip / 10, chip / 2]: the band of the
# authors' COCO setting (53 to 250 px in 512 px chips).
BAND = (1 / 10, 1 / 2)
# The finest scale brings the smallest tenth of the objects to at least this many pixels.
SMALLEST_TARGET = 32
# The test widens each valid range, as the authors' COCO test ranges widen their training ranges.
TEST_WIDENING = (0.8, 1.2)
SIZE_BINS = (0, 8, 16, 32, 64, 128, 256, 512, math.inf)


@dataclass
class Split:
    """One annotation file: its images and boxes as SNIPER reads them."""
    ann_file: str
    img_dir: str
    classes: Tuple[str, ...]
    image_sizes: np.ndarray  # int64 [I, 2] (width, height)
    boxes: List[np.ndarray]  # per image float32 [N, 4] x1, y1, x2, y2
    crowd: List[np.ndarray]  # per image bool [N]
    max_objects: int

    @property
    def sizes(self) -> np.ndarray:
        """sqrt(w * h) of every non-crowd box with a positive area."""
        values = [np.sqrt(np.prod(b[~c, 2:] - b[~c, :2], axis=1)) for b, c in zip(self.boxes, self.crowd)]
        sizes = np.concatenate(values) if values else np.zeros(0)
        return sizes[np.isfinite(sizes) & (sizes > 0)]


@dataclass
class Proposal:
    chip_size: int
    scales: list
    valid_ranges: List[Tuple[int, int]]
    chip_stride: Tuple[int, int]
    test_scales: list
    test_ranges: List[Tuple[int, int]]
    reasons: List[str] = field(default_factory=list)


def read_split(ann_file: str, img_dir: Optional[str]) -> Split:
    with open(ann_file) as f:
        try:
            coco = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f'{ann_file} is not valid JSON: {error}') from None
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            raise ValueError(f'{ann_file} is not a COCO annotation file: it has no {key!r}')
    if not coco['images']:
        raise ValueError(f'{ann_file} lists no images')
    categories = sorted(coco['categories'], key=lambda c: c['id'])
    index = {image['id']: i for i, image in enumerate(coco['images'])}
    boxes = [[] for _ in coco['images']]
    crowd = [[] for _ in coco['images']]
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        boxes[index[ann['image_id']]].append((x, y, x + w, y + h))
        crowd[index[ann['image_id']]].append(bool(ann.get('iscrowd', 0)))
    if img_dir is None:
        folder = osp.dirname(osp.abspath(ann_file))
        img_dir = osp.join(folder, 'images') if osp.isdir(osp.join(folder, 'images')) else folder
    return Split(ann_file=osp.abspath(ann_file), img_dir=osp.abspath(img_dir),
                 classes=tuple(c['name'] for c in categories),
                 image_sizes=np.array([(im['width'], im['height']) for im in coco['images']], np.int64),
                 boxes=[np.array(b, np.float32).reshape(-1, 4) for b in boxes],
                 crowd=[np.array(c, bool) for c in crowd],
                 max_objects=max((len(b) for b in boxes), default=0))


def size_table(sizes: np.ndarray) -> str:
    counts, _ = np.histogram(sizes, bins=np.array(SIZE_BINS, dtype=np.float64))
    lines = ['object size sqrt(w*h), original px   boxes   share']
    for lo, hi, n in zip(SIZE_BINS[:-1], SIZE_BINS[1:], counts):
        label = f'{lo:g} to {hi:g}' if math.isfinite(hi) else f'{lo:g} and above'
        lines.append(f'{label:>20}            {n:7d}  {n / max(len(sizes), 1):6.1%}')
    p = np.percentile(sizes, [10, 50, 90])
    lines.append(f'{len(sizes)} boxes; 10th, 50th, 90th percentile: {p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f} px')
    return '\n'.join(lines)


def propose(split: Split, chip_size: Optional[int] = None, cpu: bool = False) -> Proposal:
    """SNIPER's settings for a dataset, from its object and image sizes (docs/own_data.md). ``cpu``
    picks 256 px chips, as the demo's configs do."""
    sizes = split.sizes
    if len(sizes) == 0:
        raise ValueError(f'{split.ann_file} holds no box with a positive area to size SNIPER from')
    long_side = float(np.median(split.image_sizes.max(axis=1)))
    p10 = float(np.percentile(sizes, 10))
    reasons = []
    if chip_size is None:
        chip_size = 512 if long_side > 512 and not cpu else 256
        why = ('the paper\'s' if chip_size == 512 else 'for a CPU, as the demo' if cpu else 'as the images are small')
        reasons.append(f'median image long side {long_side:.0f} px: chips of {chip_size} px ({why})')
    lo_band, hi_band = chip_size * BAND[0], chip_size * BAND[1]
    coarse = chip_size / long_side
    reasons.append(f'coarsest scale: the whole image in one chip (long side {chip_size} px, about x{coarse:.2f})')
    fine = float(np.clip(round(SMALLEST_TARGET / p10, 1), 1.0, 4.0))
    small = float(np.mean(sizes < 32))
    reasons.append(f'{small:.0%} of the boxes are under 32 px and a tenth under {p10:.0f} px: finest scale {fine:g}x, '
                   f'which brings them to {SMALLEST_TARGET} px or more (at most 4x)')
    factors = [fine]
    if fine / coarse >= 2:
        middle = math.sqrt(fine * coarse)
        middle = 1.0 if 0.75 <= middle <= 1.33 else round(middle, 3)
        if fine / middle >= 1.25 and middle / coarse >= 1.25:
            factors.append(middle)
            reasons.append(f'a middle scale, {middle:g}x, between them (their geometric mean'
                           + (', rounded to 1x' if middle == 1.0 else '') + ')')
    else:
        reasons.append('no middle scale: the finest and the coarsest are less than 2x apart')
    ranges = []
    for i, f in enumerate(factors + [coarse]):
        lo = -1 if i == 0 else int(round(lo_band / f))
        hi = -1 if i == len(factors) else int(round(hi_band / f))
        ranges.append((lo, hi))
    reasons.append(f'valid ranges: each scale trains the objects of {lo_band:.0f} to {hi_band:.0f} px in its chips '
                   f'(the authors\' band on COCO, chip / 10 to chip / 2); the finest takes every smaller one, '
                   f'the coarsest every larger one')
    stride = (chip_size * 7 // 64, chip_size * 15 // 128)
    reasons.append(f'chip stride drawn each epoch from {stride[0]}..{stride[1] - 1} px (chip x 7/64 to chip x 15/128: '
                   'the authors\' 56..59 for 512 px chips)')
    test_ranges = [(lo if lo < 0 else int(round(lo * TEST_WIDENING[0])),
                    hi if hi < 0 else int(round(hi * TEST_WIDENING[1]))) for lo, hi in ranges]
    reasons.append('test: the training scales, each range widened (lo x 0.8, hi x 1.2) as the authors widen theirs')
    return Proposal(chip_size=chip_size, scales=factors + [chip_size], valid_ranges=ranges, chip_stride=stride,
                    test_scales=factors + [(chip_size, chip_size)], test_ranges=test_ranges, reasons=reasons)


def chip_statistics(split: Split, proposal: Proposal) -> Dict[str, float]:
    """Epoch 0's positive chips under the proposal."""
    from mmdet_sniper.chips import ChipGenerator
    generator = ChipGenerator(scales=proposal.scales, valid_ranges=proposal.valid_ranges,
                              chip_size=proposal.chip_size, chip_stride=proposal.chip_stride)
    table = generator.generate_positive(split.image_sizes, split.boxes, split.crowd, seed=0, epoch=0)
    summary = table.summary()
    return dict(chips=len(table), uncovered=summary['uncovered_boxes'], without_scale=summary['boxes_without_scale'],
                per_image=summary['chips_per_image'], pixel_ratio=summary['pixel_ratio'])


@dataclass
class Schedule:
    chips_per_gpu: int
    gpus: int
    iters_per_epoch: int
    epochs: int
    milestone: int
    warmup: int
    checkpoint_interval: int
    lr: float
    rpn_epochs: int

    @property
    def batch(self) -> int:
        return self.chips_per_gpu * self.gpus


def schedule(chips_per_epoch: int, num_images: int, chips_per_gpu: int, gpus: int, base_lr: float,
             base_batch: int, min_iters: int) -> Schedule:
    """Epochs enough for ``min_iters`` iterations (at least the authors' 14), the step after 11/14 of
    them, a warm-up of a tenth of the run (50 to 1000 iterations), lr scaled linearly to the batch."""
    batch = chips_per_gpu * gpus
    # Negative chips add up to 2 an image (neg_chips_per_image) to the positive ones.
    iters = max(1, math.ceil((chips_per_epoch + 2 * num_images) / batch))
    epochs = max(14, math.ceil(min_iters / iters))
    return Schedule(chips_per_gpu=chips_per_gpu, gpus=gpus, iters_per_epoch=iters, epochs=epochs,
                    milestone=max(1, round(epochs * 11 / 14)), warmup=int(min(1000, max(50, epochs * iters // 10))),
                    checkpoint_interval=max(1, epochs // 5), lr=round(base_lr * batch / base_batch, 6),
                    rpn_epochs=max(4, round(epochs * 4 / 14)))


def histogram(train: Split, val: Optional[Split], proposal: Proposal, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(7, 4))
    bins = np.geomspace(1, max(2048, train.sizes.max() * 1.1), 45)
    axis.hist([train.sizes] + ([val.sizes] if val else []), bins=bins, label=['train'] + (['val'] if val else []))
    for bound in {b for pair in proposal.valid_ranges for b in pair if b > 0}:
        axis.axvline(bound, color='grey', linestyle=':', linewidth=1)
    axis.set_xscale('log')
    axis.set_xlabel('object size sqrt(w*h), original px (dotted: valid range bounds)')
    axis.set_ylabel('boxes')
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _dataset(split: Split, indent: str) -> str:
    return (f"dict(\n{indent}    data_root='',\n{indent}    ann_file={split.ann_file!r},\n"
            f"{indent}    data_prefix=dict(img={split.img_dir + '/'!r}),\n{indent}    metainfo=dict(classes=classes))")


def config_text(kind: str, train: Split, val: Optional[Split], proposal: Proposal, plan: Schedule, cpu: bool,
                configs: str, command: str) -> str:
    """The text of the RPN (``kind='rpn'``) or detector config."""
    detector = kind == 'detector'
    model_name = 'faster_rcnn' if detector else 'rpn'
    bases = ([f'{configs}/_base_/sniper_{model_name}_cpu.py', f'{configs}/_base_/mobilenet_v2.py'] if cpu
             else [f'{configs}/sniper_{model_name}.py'])
    max_dets = 100 if train.max_objects <= 100 else int(math.ceil(train.max_objects / 100) * 100)
    epochs = plan.epochs if detector else plan.rpn_epochs
    interval = plan.checkpoint_interval if detector else max(1, epochs // 2)
    model = ['    backbone={{_base_.mnv2_backbone}}', '    neck={{_base_.mnv2_neck}}'] if cpu else []
    if detector:
        model.append('    roi_head=dict(bbox_head=dict(num_classes=len(classes)))')
        if max_dets > 100:
            model.append(f'    test_cfg=dict(rcnn=dict(max_per_img={max_dets}))')
    lines = [f'# Written by tools/configure_sniper.py for {train.ann_file}; the command prints its reasons and',
             '# docs/own_data.md gives the rules:',
             *textwrap.wrap(command, 100, initial_indent='#   ', subsequent_indent='#     ', break_on_hyphens=False),
             f'_base_ = {bases!r}', '', f'classes = {train.classes!r}']
    if model:
        lines.append('model = dict(\n' + ',\n'.join(model) + ')')
    lines += ['', 'train_dataloader = dict(', f'    batch_size={plan.chips_per_gpu},', '    dataset=dict(',
              f'        scales={proposal.scales!r},', f'        valid_ranges={proposal.valid_ranges!r},',
              f'        chip_size={proposal.chip_size},', f'        chip_stride={proposal.chip_stride!r},',
              f'        dataset={_dataset(train, " " * 8)}))']
    if val is None:
        lines += ['val_dataloader = None', 'val_cfg = None', 'val_evaluator = None', 'test_dataloader = None',
                  'test_cfg = None', 'test_evaluator = None']
    else:
        lines += [f'val_dataloader = dict(dataset={_dataset(val, "")})', 'test_dataloader = val_dataloader']
        if detector and max_dets > 100:
            lines.append(f"val_evaluator = dict(_delete_=True, type='MaxDetsCocoMetric', max_dets={max_dets}, "
                         f'ann_file={val.ann_file!r})')
        else:
            lines.append(f'val_evaluator = dict(ann_file={val.ann_file!r})')
        lines.append('test_evaluator = val_evaluator')
    if detector:
        tta_cfg = f', tta_cfg=dict(max_per_img={max_dets})' if max_dets > 100 else ''
        lines += ['', "# SNIPER's test: the training scales, each valid range widened.",
                  f'tta_model = dict(chip_size={proposal.chip_size}{tta_cfg})',
                  "tta_pipeline = [dict(type='LoadImageFromFile'),",
                  f"                dict(type='SniperTestViews', scales={proposal.test_scales!r},",
                  f'                     valid_ranges={proposal.test_ranges!r})]']
    else:
        lines += ['', '# tools/extract_proposals.py runs the RPN on the whole training images at these scales.',
                  f'proposal_scales = {proposal.test_scales!r}']
    schedulers = [f"dict(type='LinearLR', start_factor=1 / 30, by_epoch=False, begin=0, end={plan.warmup})"]
    if detector:
        schedulers.append(f"dict(type='MultiStepLR', begin=0, end={epochs}, by_epoch=True, "
                          f'milestones=[{plan.milestone}], gamma=0.1)')
    lines += ['', f'# {plan.iters_per_epoch} iterations of {plan.batch} chips ({plan.gpus} x {plan.chips_per_gpu}) an '
                  "epoch: epoch 0's positive chips", '# and up to 2 negative ones an image. The lr is scaled '
                  'linearly to the batch.',
              f"train_cfg = dict(type='ChipEpochTrainLoop', max_epochs={epochs}, val_interval={interval})",
              f'optim_wrapper = dict(optimizer=dict(lr={plan.lr}))',
              'param_scheduler = [', '    ' + ',\n    '.join(schedulers) + ']',
              f'default_hooks = dict(checkpoint=dict(interval={interval}, max_keep_ckpts=3))',
              f'auto_scale_lr = dict(base_batch_size={plan.batch})', '']
    return '\n'.join(lines)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('train', help='the training annotation file (COCO format)')
    parser.add_argument('--val', help='the validation annotation file (COCO format); none: no validation')
    parser.add_argument('--train-images', help='the training images\' folder (default: images/ beside the '
                        'annotation file, else its folder)')
    parser.add_argument('--val-images', help='the validation images\' folder (same default)')
    parser.add_argument('--chip-size', type=int, help='chip side in pixels (default: 512, or 256 for images '
                        'whose median long side is 512 px or less)')
    parser.add_argument('--cpu', action='store_true', help='configs for a CPU: the MobileNetV2 detector narrowed '
                        'for 2 cores (tools/model_converters/convert_mobilenet_v2.py makes its weights), 4 chips '
                        'a step; default: the R50 COCO configs')
    parser.add_argument('--gpus', type=int, default=8, help='GPUs the configs train on (default 8; 1 with --cpu)')
    parser.add_argument('--min-iters', type=int, default=1000, help='at least this many detector iterations '
                        '(default 1000)')
    parser.add_argument('--out-dir', default='work_dirs/configure_sniper', help='where the size histogram goes')
    parser.add_argument('--write-configs', metavar='DIR', help='write the RPN and detector configs here')
    parser.add_argument('--name', help='the configs\' suffix (default: the training file\'s folder name)')
    return parser.parse_args()


def main():
    import sys
    args = parse_args()
    train = read_split(args.train, args.train_images)
    val = read_split(args.val, args.val_images) if args.val else None
    if val is not None and val.classes != train.classes:
        raise ValueError(f'{args.val} has other categories than {args.train}: {val.classes} vs {train.classes}')
    print(f'{args.train}: {len(train.image_sizes)} images, {len(train.classes)} classes')
    print(size_table(train.sizes))
    if val is not None:
        print(f'{args.val}: {len(val.image_sizes)} images')
        print(size_table(val.sizes))
    proposal = propose(train, args.chip_size, args.cpu)
    print('\nproposed, because:')
    for reason in proposal.reasons:
        print(f'  - {reason}')
    print(f'  scales={proposal.scales}, valid_ranges={proposal.valid_ranges}, chip_size={proposal.chip_size}, '
          f'chip_stride={proposal.chip_stride}')
    print(f'  test scales={proposal.test_scales}, valid_ranges={proposal.test_ranges}')
    stats = chip_statistics(train, proposal)
    print(f'\nepoch 0: {stats["chips"]} positive chips ({stats["per_image"]:.2f} per image), '
          f'{stats["pixel_ratio"]:.0%} of the pyramid\'s pixels; boxes no chip holds: {stats["uncovered"]}, '
          f'valid at no scale: {stats["without_scale"]}')
    os.makedirs(args.out_dir, exist_ok=True)
    path = osp.join(args.out_dir, 'object_sizes.png')
    histogram(train, val, proposal, path)
    print(f'wrote {path}')
    if args.write_configs:
        gpus, per_gpu, base_lr, base_batch = (1, 4, 0.01, 4) if args.cpu else (args.gpus, 16, 0.12, 128)
        plan = schedule(stats['chips'], len(train.image_sizes), per_gpu, gpus, base_lr, base_batch, args.min_iters)
        folders = osp.dirname(osp.abspath(args.train)).split(os.sep)
        generic = {'annotations', 'train', 'train2017', 'training'}
        name = args.name or next((f for f in reversed(folders) if f and f not in generic), 'data')
        out = osp.abspath(args.write_configs)
        # Relative inside this repository, so that a clone elsewhere still finds its configs.
        configs = (osp.relpath(osp.join(ROOT, 'configs'), out) if out.startswith(ROOT + os.sep)
                   else osp.join(ROOT, 'configs'))
        command = 'python tools/configure_sniper.py ' + ' '.join(sys.argv[1:])
        os.makedirs(args.write_configs, exist_ok=True)
        for kind, model_name in (('rpn', 'rpn'), ('detector', 'faster_rcnn')):
            out = osp.join(args.write_configs, f'sniper_{model_name}_{name}.py')
            with open(out, 'w') as f:
                f.write(config_text(kind, train, val, proposal, plan, args.cpu, configs, command))
            print(f'wrote {out}')
        print(f'schedule: {plan.epochs} epochs of {plan.iters_per_epoch} iterations of {plan.batch} chips '
              f'(RPN: {plan.rpn_epochs} epochs), warm-up {plan.warmup} iterations, lr {plan.lr}, step after epoch '
              f'{plan.milestone}, a checkpoint every {plan.checkpoint_interval} epochs')


if __name__ == '__main__':
    main()
