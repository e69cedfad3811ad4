"""Trains a detector from a config, as mmdet's tools/train.py does, also without CUDA.

    python tools/train.py configs/sniper_faster_rcnn_r18_tiny_cpu.py --work-dir work_dirs/tiny
    tools/dist_train.sh configs/sniper_faster_rcnn.py 8            # torchrun, one process per GPU
    tools/slurm_train.sh PARTITION JOB configs/sniper_faster_rcnn.py WORK_DIR

Reads the config (and what it names: annotations, images, checkpoints); writes logs, checkpoints
and the dumped config into the work directory. On a machine without CUDA, ``--launcher pytorch`` or
``slurm`` trains with a gloo process group and CPU DDP.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models (default: work_dirs/CONFIG_NAME)')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling the lr')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or without a path from the latest one in the work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torchrun passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if cfg.get('resume', False):
        # mmengine 0.10.7 checkpoints pickle its message hub (HistoryBuffer, numpy arrays, getattr),
        # which torch >= 2.6 refuses to load with its default weights_only=True. A run resumes from
        # checkpoints it wrote itself, so it loads them in full.
        os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    if args.launcher != 'none' and not torch.cuda.is_available():
        from mmdet_sniper.engine.cpu_distributed import init_cpu_distributed
        init_cpu_distributed(args.launcher, cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
