"""What tools/train.py, test.py and extract_proposals.py share: the launcher arguments, loading the
config, and building the runner, also without CUDA."""
import argparse
import os
import os.path as osp
from contextlib import contextmanager
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='the dir to save logs and outputs (default: work_dirs/CONFIG_NAME)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torchrun passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def read_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """The config file with ``--cfg-options`` merged."""
    cfg = Config.fromfile(path)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_config(args: argparse.Namespace) -> Config:
    """The config with ``--cfg-options`` merged, the launcher and the work dir set."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = read_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


@contextmanager
def runner_of(cfg: Config):
    """The runner of ``cfg``; without CUDA a distributed launcher gets a gloo process group first.
    On leaving, the process group is destroyed: left to the interpreter's exit, gloo's threads can
    abort the process ('terminate called without an active exception') after the work is done."""
    try:
        yield _build_runner(cfg)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # no rank tears down while another still talks to it
            dist.destroy_process_group()


def _build_runner(cfg: Config):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if cfg.get('resume', False) or cfg.get('load_from'):
        # mmengine 0.10.7 checkpoints pickle its message hub (HistoryBuffer, numpy arrays, getattr),
        # which torch >= 2.6 refuses to load with its default weights_only=True. The tools load
        # checkpoints that mmengine wrote, so they load them in full.
        os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    if cfg.launcher != 'none' and not torch.cuda.is_available():
        from .cpu_distributed import init_cpu_distributed
        init_cpu_distributed(cfg.launcher, cfg)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def build_train_dataset(cfg: Config):
    """The config's training dataset (for SNIPER configs a ``SniperDataset``), built in mmdet's scope."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    import mmdet_sniper  # noqa: F401  (registers the SNIPER modules)
    register_all_modules()
    return DATASETS.build(cfg.train_dataloader.dataset)
