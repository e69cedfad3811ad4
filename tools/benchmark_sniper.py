"""The paper's claims on small data: SNIPER against full-image training, at the same number of
training iterations and batch size.

    python tools/benchmark_sniper.py trees --iters 300 --batch 2 --proposals work_dirs/demo/proposals.pkl
    python tools/benchmark_sniper.py synthetic --iters 300 --batch 2 --seeds 0 1 2
    python tools/benchmark_sniper.py configs/mine/sniper_faster_rcnn_mine.py --variants a d --seeds 0 1 2

Variants, all built from the dataset's SNIPER detector config (its model, scales and schedule shape):
  a  single-scale full-image training (the original image), single-scale test
  b  3-scale full-image training (every image at each of the config's scales, each epoch), tested
     at the same scales without valid ranges
  c  SNIPER: positive and negative chips at the 3 scales, SNIPER's multi-scale test
  d  SNIPER without negative chips
  e  SNIPER at 2 scales, the finest dropped (its training and test scale)
Each variant is trained once per seed (``tools/train.py --seed``); the table gives, per column, the
mean and the sample standard deviation over the seeds run. For each: COCO AP, AP50,
AP75, AP_small/medium/large on the validation split, false positives per image
(detections scoring >= 0.5 that match no ground truth at IoU 0.5), pixels processed per training
image per epoch (chips count whole, padding included) and the training wall time. The SNIPER
checkpoints (c, d, e) are also tested at 1x alone and with flipped views added to SNIPER's test.

Negative chips need RPN proposals: --proposals, else the dataset's RPN config is trained and its
proposals extracted into WORK_DIR first. Writes WORK_DIR/<variant>/seed<N>/ (config, checkpoint, test logs),
WORK_DIR/results.json (a finished (variant, seed) is not run again, so a benchmark can be completed
over several invocations, also running at once) and prints a markdown table.
"""
import argparse
import copy
import fcntl
import glob
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
import time

import mmcv
import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from pycocotools.coco import COCO

from mmdet_sniper.engine.launch import build_train_dataset, read_config
from mmdet_sniper.transforms.test_scale import resize_args

DATASETS = {
    'trees': dict(detector='configs/sniper_faster_rcnn_mnv2_trees_cpu.py', rpn='configs/sniper_rpn_mnv2_trees_cpu.py',
                  prepare=['tools/dataset_converters/prepare_tree_data.py', 'data/trees']),
    'synthetic': dict(detector='configs/sniper_faster_rcnn_mnv2_tiny_cpu.py', rpn='configs/sniper_rpn_mnv2_tiny_cpu.py',
                      prepare=['tools/make_synthetic_data.py', 'data/synthetic']),
}
VARIANTS = {
    'a': 'single-scale full image',
    'b': '3-scale full image',
    'c': 'SNIPER, 3 scales, negative chips',
    'd': 'SNIPER, 3 scales, no negative chips',
    'e': 'SNIPER, 2 scales (finest dropped)',
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', help=f'{" or ".join(sorted(DATASETS))}, or the path of a SNIPER detector config '
                        '(e.g. one tools/configure_sniper.py wrote)')
    parser.add_argument('--rpn-config', help='with a detector config: its RPN config, for the negative chips')
    parser.add_argument('--iters', type=int, default=300, help='training iterations of every variant')
    parser.add_argument('--batch', type=int, default=2, help='images or chips per iteration')
    parser.add_argument('--variants', nargs='+', choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0], help='train every variant once per seed')
    parser.add_argument('--proposals', help="RPN proposals of the training images (else the RPN stage runs here)")
    parser.add_argument('--work-dir', help='default: work_dirs/benchmark_sniper_<dataset>')
    return parser.parse_args()


def run(*command):
    subprocess.run([sys.executable, *command], check=True)


def train_rpn_proposals(dataset: dict, work_dir: str) -> str:
    proposals = osp.join(work_dir, 'proposals.pkl')
    if not osp.exists(proposals):
        rpn_dir = osp.join(work_dir, 'rpn')
        run('tools/train.py', dataset['rpn'], '--work-dir', rpn_dir, '--seed', '0')
        with open(osp.join(rpn_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        run('tools/extract_proposals.py', dataset['rpn'], checkpoint, '--out', proposals,
            '--work-dir', osp.join(work_dir, 'proposals'))
    return proposals


def pyramid_resizes(sniper: dict) -> list:
    """``Resize`` arguments for each SNIPER training scale: factors, and the last one a longest side."""
    scales = sniper['scales']
    if isinstance(scales[0], (tuple, list)):
        return [resize_args(tuple(s)) for s in scales]
    return [resize_args(float(s)) for s in scales[:-1]] + [resize_args((scales[-1], scales[-1]))]


def full_image_train(cfg, resizes: list, batch: int, num_workers: int = 0) -> None:
    """Replaces the chips by whole training images, each at every one of ``resizes``, per epoch."""
    images = cfg.train_dataloader.dataset.dataset
    datasets = []
    for resize in resizes:
        dataset = copy.deepcopy(images)
        dataset.pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', keep_ratio=True, **resize),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs'),
        ]
        datasets.append(dataset)
    cfg.train_dataloader = dict(
        batch_size=batch, num_workers=num_workers, persistent_workers=num_workers > 0,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(type='ConcatDataset', datasets=datasets))


def iteration_schedule(cfg, iters: int, batch: int) -> None:
    # The linear scaling rule from the config's batch size (at the configs' lr with half their batch,
    # the tree detector diverged to NaN).
    cfg.optim_wrapper.optimizer.lr *= batch / cfg.train_dataloader.batch_size
    # A batch of one image or chip gives spiky gradients: without clipping the synthetic run went to
    # NaN within 200 iterations at batch 1.
    cfg.optim_wrapper.clip_grad = dict(max_norm=10, norm_type=2)
    cfg.train_dataloader.batch_size = batch
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=max(1, min(200, iters // 4))),
        dict(type='MultiStepLR', by_epoch=False, begin=0, end=iters,
             milestones=[int(iters * 0.75), int(iters * 0.92)], gamma=0.1)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=iters)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=25)
    cfg.log_processor = dict(by_epoch=False)


def variant_config(dataset: dict, variant: str, args, proposals: str):
    """The variant's config, its full-image ``Resize`` arguments (None for chips) and how its test
    runs (``tools/test.py`` arguments)."""
    cfg = read_config(dataset['detector'])
    iteration_schedule(cfg, args.iters, args.batch)
    sniper = cfg.train_dataloader.dataset
    views = cfg.tta_pipeline[-1]
    resizes = {'a': [resize_args(1.0)], 'b': pyramid_resizes(sniper)}.get(variant)
    test_args = []
    # Every single-scale test, (a)'s and that of the SNIPER checkpoints, sees the original image.
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    for i, step in enumerate(test_pipeline):
        if step['type'] == 'Resize':
            test_pipeline[i] = dict(type='Resize', keep_ratio=True, **resize_args(1.0))
    if variant == 'a':
        full_image_train(cfg, resizes, args.batch)
        test_args = ['--single-scale']
    elif variant == 'b':
        full_image_train(cfg, resizes, args.batch)
        views.valid_ranges = [(-1, -1)] * len(views.scales)
    elif variant == 'c':
        sniper.proposals_file = proposals
    elif variant == 'd':
        sniper.proposals_file = None
        sniper.neg_chips_per_image = 0
    elif variant == 'e':
        sniper.proposals_file = proposals
        sniper.scales, sniper.valid_ranges = sniper.scales[1:], sniper.valid_ranges[1:]
        views.scales, views.valid_ranges = views.scales[1:], views.valid_ranges[1:]
    return cfg, resizes, test_args


def pixels_per_image(cfg, resizes: list, image_sizes: np.ndarray, chip_size: int) -> float:
    """Pixels one training image costs per epoch: its whole image at each of ``resizes`` (as mmdet's
    ``Resize`` sizes it), or with ``resizes=None`` its chips."""
    if resizes is None:
        return len(build_train_dataset(cfg).chips.table(0)) * chip_size ** 2 / len(image_sizes)
    total = 0
    for w, h in image_sizes.tolist():
        for resize in resizes:
            new_w, new_h = mmcv.rescale_size((w, h), resize.get('scale_factor', resize.get('scale')))
            total += new_w * new_h
    return total / len(image_sizes)


def false_positives_per_image(detections_file: str, ann_file: str, classes: tuple, min_score: float = 0.5) -> float:
    """Detections scoring >= min_score that match no ground-truth box of their class at IoU 0.5."""
    coco = COCO(ann_file)
    # Labels index the config's classes, as CocoDataset maps them, whatever the file's category ids.
    label_to_cat = coco.getCatIds(catNms=list(classes))
    with open(detections_file, 'rb') as f:
        results = pickle.load(f)
    false_positives = 0
    for result in results:
        pred = result['pred_instances']
        keep = pred['scores'] >= min_score
        boxes, labels = pred['bboxes'][keep], pred['labels'][keep]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=result['img_id'], iscrowd=False))
        for label in labels.unique().tolist():
            gt = torch.tensor([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
                               for a in anns if a['category_id'] == label_to_cat[label]], dtype=torch.float32)
            mine = boxes[labels == label]
            if len(gt) == 0:
                false_positives += len(mine)
            else:
                false_positives += int((bbox_overlaps(mine, gt.reshape(-1, 4)).max(1).values < 0.5).sum())
    return false_positives / len(results)


# A SNIPER checkpoint is also tested at 1x alone and with flipped views added to SNIPER's test.
OTHER_TESTS = {'single-scale (1x)': ['--single-scale'],
               'SNIPER test, flipped views added': ['--cfg-options', 'tta_pipeline.1.flip=True']}
SNIPER_VARIANTS = ('c', 'd', 'e')
METRICS = (('AP', ''), ('AP50', '_50'), ('AP75', '_75'), ('AP_s', '_s'), ('AP_m', '_m'), ('AP_l', '_l'))


def test_checkpoint(cfg, config_file: str, checkpoint: str, test_dir: str, *test_args) -> dict:
    """COCO metrics and false positives per image of one test of a checkpoint."""
    detections = osp.join(test_dir, 'detections.pkl')
    run('tools/test.py', config_file, checkpoint, '--work-dir', test_dir, '--out', detections, *test_args)
    with open(sorted(glob.glob(osp.join(test_dir, '*', '*.json')))[-1]) as f:
        metrics = json.load(f)
    # CocoMetric reports nothing when a model detects nothing at all: AP 0.
    return dict(**{k: metrics.get(f'coco/bbox_mAP{s}', 0.0) for k, s in METRICS},
                fp_per_image=false_positives_per_image(detections, cfg.test_evaluator.ann_file,
                                                       cfg.test_dataloader.dataset.metainfo.classes))


def run_variant(dataset: dict, variant: str, seed: int, args, proposals: str, work_dir: str) -> dict:
    cfg, resizes, test_args = variant_config(dataset, variant, args, proposals)
    run_dir = osp.join(work_dir, variant, f'seed{seed}')
    os.makedirs(run_dir, exist_ok=True)
    config_file = osp.join(run_dir, 'config.py')
    cfg.dump(config_file)
    images = read_config(dataset['detector']).train_dataloader.dataset
    with open(osp.join(images.dataset.data_root, images.dataset.ann_file)) as f:
        image_sizes = np.array([[i['width'], i['height']] for i in json.load(f)['images']])
    pixels = pixels_per_image(cfg, resizes, image_sizes, images.chip_size)

    start = time.perf_counter()
    run('tools/train.py', config_file, '--work-dir', run_dir, '--seed', str(seed))
    train_seconds = time.perf_counter() - start
    checkpoint = osp.join(run_dir, f'iter_{args.iters}.pth')
    result = dict(variant=variant, seed=seed, name=VARIANTS[variant],
                  **test_checkpoint(cfg, config_file, checkpoint, osp.join(run_dir, 'test'), *test_args),
                  pixels_per_image=pixels, train_seconds=train_seconds)
    if variant in SNIPER_VARIANTS:
        result['other_tests'] = {
            name: test_checkpoint(cfg, config_file, checkpoint, osp.join(run_dir, f'test_{i}'), *other_args)
            for i, (name, other_args) in enumerate(OTHER_TESTS.items())}
    return result


COLUMNS = (('AP', 3), ('AP50', 3), ('AP75', 3), ('AP_s', 3), ('AP_m', 3), ('AP_l', 3), ('fp_per_image', 1),
           ('pixels_per_image', 2), ('train_seconds', 0))
TEST_COLUMNS = COLUMNS[:7]


def mean_and_spread(values: list, digits: int, scale: float = 1.0) -> str:
    """``mean ± sample standard deviation`` of one column over seeds; the mean alone for one seed; '-'
    where pycocotools found no objects of that size (-1)."""
    if all(v == -1 for v in values):
        return '-'
    values = np.asarray(values, dtype=np.float64) / scale
    if len(values) == 1:
        return f'{values[0]:.{digits}f}'
    return f'{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}'


def _row(label: str, runs: list, columns) -> str:
    cells = [mean_and_spread([r[name] for r in runs], digits, 1e6 if name == 'pixels_per_image' else 1.0)
             for name, digits in columns]
    return f"| {label} | {' '.join(str(r['seed']) for r in runs)} | {' | '.join(cells)} |"


def table(results: dict) -> str:
    """One row per variant over all its seeds in ``results`` (keys ``<variant>/seed<N>``), then the
    other tests of the SNIPER checkpoints beside their own test."""
    by_variant = {}
    for r in results.values():
        by_variant.setdefault(r['variant'], []).append(r)
    for runs in by_variant.values():
        runs.sort(key=lambda r: r['seed'])
    lines = ['| variant | seeds | AP | AP50 | AP75 | AP_s | AP_m | AP_l | FP/image (score >= 0.5) '
             '| Mpx per image per epoch | train time (s) |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    lines += [_row(f"({v}) {runs[0]['name']}", runs, COLUMNS) for v, runs in sorted(by_variant.items())]
    tested = [(v, runs) for v, runs in sorted(by_variant.items()) if all('other_tests' in r for r in runs)]
    if tested:
        lines += ['', 'The SNIPER checkpoints under other tests:', '',
                  '| checkpoint, test | seeds | AP | AP50 | AP75 | AP_s | AP_m | AP_l | FP/image (score >= 0.5) |',
                  '|---|---|---|---|---|---|---|---|---|']
        for v, runs in tested:
            lines.append(_row(f'({v}), SNIPER test', runs, TEST_COLUMNS))
            for name in OTHER_TESTS:
                lines.append(_row(f'({v}), {name}', [dict(r['other_tests'][name], seed=r['seed']) for r in runs],
                                  TEST_COLUMNS))
    return '\n'.join(lines)


def record(results_file: str, key: str, result: dict) -> dict:
    """Adds one run to the results file and returns all it holds. Benchmarks of other variants may
    run at once in the same work dir: the file is re-read under a lock, so no run overwrites another."""
    with open(results_file + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = {}
        if osp.exists(results_file):
            with open(results_file) as f:
                results = json.load(f)
        results[key] = result
        with open(results_file + '.partial', 'w') as f:
            json.dump(results, f, indent=1)
        os.replace(results_file + '.partial', results_file)
    return results


def main():
    args = parse_args()
    if args.dataset in DATASETS:
        dataset = DATASETS[args.dataset]
        run(*dataset['prepare'])
    elif osp.isfile(args.dataset):
        dataset = dict(detector=args.dataset, rpn=args.rpn_config)
    else:
        raise SystemExit(f'dataset: {args.dataset!r} is neither {" nor ".join(sorted(DATASETS))} nor a config file')
    name = osp.splitext(osp.basename(args.dataset))[0]
    work_dir = args.work_dir or f'work_dirs/benchmark_sniper_{name}'
    os.makedirs(work_dir, exist_ok=True)
    results_file = osp.join(work_dir, 'results.json')
    results = {}
    if osp.exists(results_file):
        with open(results_file) as f:
            results = json.load(f)
    needs_proposals = {'c', 'e'} & set(args.variants)
    if needs_proposals and not args.proposals and not dataset.get('rpn'):
        raise SystemExit('variants c and e need --proposals, or --rpn-config with a detector config')
    proposals = (args.proposals or train_rpn_proposals(dataset, work_dir)) if needs_proposals else None
    for variant in args.variants:
        for seed in args.seeds:
            key = f'{variant}/seed{seed}'
            if key in results:
                continue
            results = record(results_file, key, run_variant(dataset, variant, seed, args, proposals, work_dir))
    print(f'\n{args.dataset}: {args.iters} iterations of {args.batch} images or chips; mean ± standard deviation '
          'over the seeds\n')
    print(table(results))


if __name__ == '__main__':
    main()
