import os

import pytest
from mmengine.config import Config

from mmdet_sniper.engine import cpu_distributed

LAUNCH_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


@pytest.fixture
def environ(monkeypatch):
    """The module's own copy of the environment, without launch variables, so none leak."""
    copy = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES and not k.startswith('SLURM_')}
    monkeypatch.setattr(cpu_distributed.os, 'environ', copy)
    return copy


@pytest.fixture
def captured(monkeypatch, environ):
    """Records the process group's backend instead of starting one."""
    calls = []
    monkeypatch.setattr(cpu_distributed.dist, 'init_process_group', lambda backend: calls.append(backend))
    return calls


def test_torchrun_environment_gives_gloo_and_cpu_ddp(captured, environ):
    environ.update(RANK='1', WORLD_SIZE='2', MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl')),
                      model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True)))
    cpu_distributed.init_cpu_distributed('pytorch', cfg)
    assert captured == ['gloo'] and cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', find_unused_parameters=True,
                                         device_ids=None)


def test_slurm_environment_is_derived_from_slurms_variables(captured, environ, monkeypatch):
    environ.update(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1', SLURM_NODELIST='node[7-8]')
    monkeypatch.setattr(cpu_distributed.subprocess, 'check_output', lambda args, text: 'node7\nnode8\n')
    cfg = Config(dict())
    cpu_distributed.init_cpu_distributed('slurm', cfg)
    assert (environ['RANK'], environ['WORLD_SIZE'], environ['LOCAL_RANK']) == ('3', '4', '1')
    assert environ['MASTER_ADDR'] == 'node7' and environ['MASTER_PORT'] == '29500'
    assert captured == ['gloo'] and cfg.model_wrapper_cfg.device_ids is None


def test_missing_launch_variables_and_unknown_launchers_are_clear_errors(captured):
    with pytest.raises(RuntimeError, match='needs the environment variable RANK'):
        cpu_distributed.init_cpu_distributed('pytorch', Config(dict()))
    with pytest.raises(ValueError, match="launcher must be 'pytorch' or 'slurm'"):
        cpu_distributed.init_cpu_distributed('mpi', Config(dict()))
    assert captured == []
