"""Distributed training without CUDA: a gloo process group for the MMEngine runner.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
``device_ids=[LOCAL_RANK]``; both fail on a machine without CUDA. :func:`init_cpu_distributed`
initialises the process group itself, before the runner is built (the runner then skips its own
``init_dist``), and has DDP wrap the model with ``device_ids=None``.
"""
import os
import subprocess

import torch.distributed as dist


def _slurm_environment() -> None:
    """RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR from slurm's variables, as mmengine derives them."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
    if 'MASTER_ADDR' not in os.environ:
        nodes = subprocess.check_output(['scontrol', 'show', 'hostname', os.environ['SLURM_NODELIST']], text=True)
        os.environ['MASTER_ADDR'] = nodes.split()[0]
    os.environ.setdefault('MASTER_PORT', '29500')


def init_cpu_distributed(launcher: str, cfg) -> None:
    """Starts a gloo process group for ``launcher`` (``'pytorch'``: torchrun's environment;
    ``'slurm'``: srun's) and sets ``cfg`` up for CPU DDP."""
    if launcher == 'slurm':
        _slurm_environment()
    elif launcher != 'pytorch':
        raise ValueError(f"launcher must be 'pytorch' or 'slurm' without CUDA, got {launcher!r}")
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if name not in os.environ:
            raise RuntimeError(f'launcher={launcher!r} needs the environment variable {name}; start the '
                               'processes with torchrun (tools/dist_train.sh) or srun (tools/slurm_train.sh)')
    dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(type='MMDistributedDataParallel')
    wrapper.update(cfg.get('model_wrapper_cfg') or {})
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
