"""SNIPER's COCO detector on a GPU, every step a user's first run takes, with its figures.

    python tools/benchmark_gpu.py                       # a GPU: 300 iterations of 16 chips, AMP
    python tools/benchmark_gpu.py --iters 6 --batch 2 --full-batch 1 --images 6 --val-images 2 --dist-iters 2
                                                        # the same steps on a CPU, as a smoke run

Each step runs this project's own tools in a process of its own, on
configs/sniper_faster_rcnn.py as a user would train it: R50-FPN, 16 chips of 512 px per GPU,
the authors' optimisation (its lr scaled by mmdet's linear rule from 128 chips to --batch), AMP when
CUDA is there. The backbone starts from random weights: the GPU machines cannot download ImageNet's.
1. data: COCO-like synthetic images (640x480, 3 classes, 4-12 objects of 8-400 px), drawn here;
2. SNIPER training for --iters iterations: chips/s, peak GPU memory, the fraction of each step
   spent waiting for data (mmengine's data_time over time), and that every logged loss is finite;
3. the same model trained on whole images, each at the three scales (tools/benchmark_sniper.py's
   variant (b)), for --iters iterations of --full-batch images: images/s, and from both the cost of
   one training image per epoch (its chips, or its three rescaled copies) of SNIPER against 3-scale
   training;
4. SNIPER's multi-scale test and its sliced test of step 2's checkpoint on the validation images,
   evaluated by pycocotools: images/s and AP (random weights and a few hundred steps: the AP only
   shows that the path runs);
5. step 2's training for --dist-iters iterations under torchrun (tools/dist_train.sh, one process:
   NCCL with CUDA, gloo without), the distributed path a multi-GPU run takes.
Writes WORK_DIR/results.json and WORK_DIR/results.md (the table, also printed).
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys

import numpy as np
import torch

from benchmark_sniper import full_image_train, pyramid_resizes, run  # a sibling tool: tools/ is on sys.path
from mmdet_sniper.engine.launch import build_train_dataset, read_config
from mmdet_sniper.testing.synthetic_coco import CLASSES, write_synthetic_coco

CONFIG = 'configs/sniper_faster_rcnn.py'
LOG_INTERVAL = 10


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=300, help='training iterations of steps 2 and 3')
    parser.add_argument('--batch', type=int, default=16, help="chips per iteration (the config's 16 per GPU)")
    parser.add_argument('--full-batch', type=int, default=2,
                        help="whole images per iteration of the 3-scale training (mmdet's 2 per GPU)")
    parser.add_argument('--images', type=int, default=200, help='synthetic training images')
    parser.add_argument('--val-images', type=int, default=50, help='synthetic validation images')
    parser.add_argument('--dist-iters', type=int, default=20, help='iterations of the torchrun training')
    parser.add_argument('--workers', type=int, help="data loader workers (default: the config's)")
    parser.add_argument('--work-dir', default='work_dirs/benchmark_gpu')
    return parser.parse_args()


def sniper_config(data_root: str, args):
    """The COCO config on the synthetic data."""
    cfg = read_config(CONFIG)
    cfg.model.backbone.init_cfg = None
    cfg.model.roi_head.bbox_head.num_classes = len(CLASSES)
    loader = cfg.train_dataloader
    if args.workers is not None:
        for dataloader in (loader, cfg.test_dataloader):
            dataloader.update(num_workers=args.workers, persistent_workers=args.workers > 0)
    loader.batch_size = args.batch
    loader.dataset.cache_dir = None
    loader.dataset.dataset.update(data_root=osp.join(data_root, 'train', ''), ann_file='annotations.json',
                                  data_prefix=dict(img='images/'), metainfo=dict(classes=CLASSES))
    test = cfg.test_dataloader.dataset
    test.update(data_root=osp.join(data_root, 'val', ''), ann_file='annotations.json',
                data_prefix=dict(img='images/'), metainfo=dict(classes=CLASSES))
    cfg.test_evaluator.ann_file = osp.join(data_root, 'val', 'annotations.json')
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg


def iteration_schedule(cfg, iters: int, batch: int) -> None:
    """``iters`` iterations at the config's lr and warm-up scaled from its 128 chips to ``batch``."""
    scale = batch / cfg.auto_scale_lr.base_batch_size
    cfg.optim_wrapper.optimizer.lr *= scale
    warmup = cfg.param_scheduler[0]
    warmup.end = max(1, int(round(warmup.end * scale)))
    cfg.param_scheduler = [warmup]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=iters)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=min(LOG_INTERVAL, iters))
    # Each logged time and data_time is the mean of the iterations since the last log.
    cfg.log_processor = dict(by_epoch=False, window_size=min(LOG_INTERVAL, iters))


def training_figures(work_dir: str, items_per_iter: int) -> dict:
    """Throughput, data wait and peak memory from the run's logged scalars (mmengine's
    vis_data/scalars.json), the first logged window (cuDNN autotuning, allocator growth) left out."""
    with open(sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]) as f:
        logs = [json.loads(line) for line in f if line.strip()]
    train = [log for log in logs if 'loss' in log]
    losses = [log[k] for log in train for k in log if k.startswith('loss')]
    timed = train[1:] if len(train) > 1 else train
    step, data = np.mean([log['time'] for log in timed]), np.mean([log['data_time'] for log in timed])
    memory = [log['memory'] for log in train if 'memory' in log]
    return dict(iterations=train[-1]['iter'], items_per_s=items_per_iter / step, step_s=step,
                data_wait=data / step, peak_memory_mb=max(memory) if memory else None,
                losses_finite=bool(losses) and all(math.isfinite(v) for v in losses), last_loss=train[-1]['loss'])


def amp_args() -> list:
    """tools/train.py's --amp where CUDA is: mmengine's AmpOptimWrapper refuses the CPU."""
    return ['--amp'] if torch.cuda.is_available() else []


def train(config_file: str, work_dir: str) -> None:
    run('tools/train.py', config_file, '--work-dir', work_dir, '--seed', '0', *amp_args())


def test_figures(config_file: str, checkpoint: str, work_dir: str, *test_args) -> dict:
    """AP of one test of ``checkpoint`` and its images/s (mmengine's mean step time of the test loop,
    one image a step)."""
    run('tools/test.py', config_file, checkpoint, '--work-dir', work_dir, *test_args)
    with open(sorted(glob.glob(osp.join(work_dir, '*', '*.json')))[-1]) as f:
        metrics = json.load(f)
    return dict(AP=metrics.get('coco/bbox_mAP', 0.0), AP_s=metrics.get('coco/bbox_mAP_s', 0.0),
                images_per_s=1.0 / metrics['time'])


def device_name() -> str:
    if torch.cuda.is_available():
        return f'{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}'
    return f'CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), torch {torch.__version__}'


def training_row(label: str, figures: dict, batch: str, unit: str) -> str:
    memory = '-' if figures['peak_memory_mb'] is None else f"{figures['peak_memory_mb'] / 1024:.1f}"
    return (f"| {label} | {figures['iterations']} | {batch} | {figures['items_per_s']:.2f} {unit}/s | "
            f"{figures['step_s']:.3f} | {figures['data_wait']:.1%} | {memory} | {figures['losses_finite']} |")


def table(results: dict) -> str:
    chips, images = f"{results['batch']} chips", f"{results['full_batch']} images"
    lines = [
        f"Device: {results['device']}. AMP: {results['amp']}. {results['train_images']} training images, "
        f"{results['chips_per_image']:.2f} chips per image per epoch; {results['val_images']} validation images.",
        '',
        '| training | iterations | batch | throughput | step (s) | data wait | peak GPU memory (GiB) | losses finite |',
        '|---|---|---|---|---|---|---|---|',
        training_row('SNIPER chips', results['sniper_train'], chips, 'chips'),
        training_row('3-scale whole images', results['full_image_train'], images, 'images'),
        training_row(f"SNIPER chips, torchrun (1 process, {results['dist_backend']})", results['torchrun_train'],
                     chips, 'chips'),
        '',
        f"Training cost of one image per epoch: SNIPER {results['sniper_s_per_image']:.3f} s "
        f"({results['chips_per_image']:.2f} chips), 3-scale {results['full_s_per_image']:.3f} s (3 rescaled copies): "
        f"SNIPER costs {results['cost_ratio']:.2f}x of 3-scale training.",
        '',
        '| test of the SNIPER checkpoint | images/s | AP | AP_small |',
        '|---|---|---|---|',
    ]
    for name, r in results['tests'].items():
        lines.append(f"| {name} | {r['images_per_s']:.2f} | {r['AP']:.3f} | {r['AP_s']:.3f} |")
    return '\n'.join(lines)


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    data_root = osp.join(args.work_dir, 'data')
    for split, count, seed in (('train', args.images, 0), ('val', args.val_images, 1)):
        if not osp.exists(osp.join(data_root, split, 'annotations.json')):
            write_synthetic_coco(osp.join(data_root, split), count, seed=seed, image_size=(640, 480),
                                 objects_per_image=(4, 12), size_range=(8, 400))

    cfg = sniper_config(data_root, args)
    iteration_schedule(cfg, args.iters, args.batch)
    sniper_file = osp.join(args.work_dir, 'sniper.py')
    cfg.dump(sniper_file)
    chips_per_image = len(build_train_dataset(cfg).chips.table(0)) / args.images
    sniper_dir = osp.join(args.work_dir, 'sniper')
    train(sniper_file, sniper_dir)
    sniper = training_figures(sniper_dir, args.batch)
    checkpoint = osp.join(sniper_dir, f'iter_{args.iters}.pth')

    full_cfg = sniper_config(data_root, args)
    full_image_train(full_cfg, pyramid_resizes(full_cfg.train_dataloader.dataset), args.full_batch,
                     num_workers=cfg.train_dataloader.num_workers)
    iteration_schedule(full_cfg, args.iters, args.full_batch)
    full_file = osp.join(args.work_dir, 'full_image.py')
    full_cfg.dump(full_file)
    full_dir = osp.join(args.work_dir, 'full_image')
    train(full_file, full_dir)
    full = training_figures(full_dir, args.full_batch)

    tests = {'SNIPER multi-scale test (3 scales, valid ranges)': [],
             'SNIPER sliced test (512 px tiles)': ['--cfg-options', 'tta_model.sliced=True']}
    test_results = {name: test_figures(sniper_file, checkpoint, osp.join(args.work_dir, f'test_{i}'), *test_args)
                    for i, (name, test_args) in enumerate(tests.items())}

    dist_dir = osp.join(args.work_dir, 'torchrun')
    env = dict(os.environ, PYTHON=sys.executable, PORT=os.environ.get('PORT', '29511'))
    subprocess.run(['tools/dist_train.sh', sniper_file, '1', '--work-dir', dist_dir, '--seed', '0',
                    *amp_args(),
                    '--cfg-options', f'train_cfg.max_iters={args.dist_iters}',
                    f'default_hooks.checkpoint.interval={args.dist_iters}',
                    f'default_hooks.logger.interval={min(LOG_INTERVAL, args.dist_iters)}'], check=True, env=env)
    dist = training_figures(dist_dir, args.batch)

    sniper_s_per_image = chips_per_image / sniper['items_per_s']
    full_s_per_image = len(pyramid_resizes(cfg.train_dataloader.dataset)) / full['items_per_s']
    results = dict(device=device_name(), amp=torch.cuda.is_available(), batch=args.batch, full_batch=args.full_batch,
                   train_images=args.images, val_images=args.val_images, chips_per_image=chips_per_image,
                   sniper_train=sniper, full_image_train=full, torchrun_train=dist,
                   dist_backend='NCCL' if torch.cuda.is_available() else 'gloo',
                   sniper_s_per_image=sniper_s_per_image, full_s_per_image=full_s_per_image,
                   cost_ratio=sniper_s_per_image / full_s_per_image, tests=test_results)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    text = table(results)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    failed = [name for name, r in (('SNIPER', sniper), ('3-scale', full), ('torchrun', dist)) if not r['losses_finite']]
    if failed:
        sys.exit(f'non-finite losses in the training of: {", ".join(failed)}')


if __name__ == '__main__':
    main()
