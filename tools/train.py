"""Trains a detector from a config, as mmdet's tools/train.py does, also without CUDA.

    python tools/train.py configs/sniper_faster_rcnn_r18_tiny_cpu.py --work-dir work_dirs/tiny
    tools/dist_train.sh configs/sniper_faster_rcnn.py 8            # torchrun, one process per GPU
    tools/slurm_train.sh PARTITION JOB configs/sniper_faster_rcnn.py WORK_DIR

Reads the config (and what it names: annotations, images, checkpoints); writes logs, checkpoints
and the dumped config into the work directory. On a machine without CUDA, ``--launcher pytorch`` or
``slurm`` trains with a gloo process group and CPU DDP.
"""
import require_sniper  # noqa: F401  isort: skip  (first: explains a Python without mmdet_sniper)
import argparse

from mmdet_sniper.engine.launch import add_launch_args, load_config, runner_of


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling the lr')
    parser.add_argument('--seed', type=int, help="random seed of the run (mmengine's randomness.seed): weights, "
                        'data order and augmentation; the chips themselves are named by the dataset\'s own seed')
    parser.add_argument('--deterministic', action='store_true',
                        help='make cuDNN deterministic too (needs --seed; slower on a GPU)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or without a path from the latest one in the work dir')
    add_launch_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.deterministic and args.seed is None:
        raise ValueError('--deterministic needs --seed N')
    if args.seed is not None:
        cfg.randomness = dict(seed=args.seed, deterministic=args.deterministic)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    with runner_of(cfg) as runner:
        runner.train()


if __name__ == '__main__':
    main()
