"""End to end: the tiny CPU config trains on a generated dataset through the MMEngine runner, in one
process, resumed from a mid-epoch checkpoint, and under torchrun with two gloo processes."""
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmdet_sniper  # noqa: F401
from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs' / 'sniper_faster_rcnn_r18_tiny_cpu.py'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    for split, seed in (('train', 0), ('val', 1)):
        write_synthetic_coco(str(root / split), 6, seed=seed, image_size=((200, 400), (150, 300)),
                             size_range=(8, 150))
    return root


class RecordChips(Hook):
    """Keeps every iteration's chips (image, chip box), epoch and loss, and each epoch's chip table."""

    def __init__(self):
        self.chips, self.epochs, self.losses, self.tables = [], [], [], {}

    def before_train_epoch(self, runner):
        dataset = runner.train_dataloader.dataset
        table = dataset.chips.table(runner.epoch)
        self.tables[runner.epoch] = sorted((Path(dataset.image_paths[image]).name, tuple(chip.tolist()))
                                           for image, chip in zip(table.image_index, table.chips))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.chips.append([(Path(s.img_path).name, tuple(s.chip.tolist())) for s in data_batch['data_samples']])
        self.epochs.append(runner.epoch)
        self.losses.append(float(outputs['loss']))

    def chips_of_epoch(self, epoch):
        return sorted(chip for chips, e in zip(self.chips, self.epochs) if e == epoch for chip in chips)


def tiny_config(data_root, work_dir, max_epochs, **overrides):
    previous = os.environ.get('SNIPER_DATA_ROOT')
    os.environ['SNIPER_DATA_ROOT'] = f'{data_root}/'
    try:
        cfg = Config.fromfile(str(CONFIG))
    finally:
        if previous is None:
            del os.environ['SNIPER_DATA_ROOT']
        else:
            os.environ['SNIPER_DATA_ROOT'] = previous
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = Path(work_dir).name
    cfg.train_dataloader.dataset.cache_dir = str(Path(work_dir).parent / 'chip_cache')
    cfg.train_cfg.max_epochs = max_epochs
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.log_processor = dict(window_size=1, by_epoch=True)
    cfg.randomness = dict(seed=0)
    cfg.merge_from_dict(overrides)
    return cfg


def train(cfg, resume_from=None):
    recorder = RecordChips()
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, str(resume_from)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    return recorder


@pytest.fixture
def one_thread():
    """One thread: the tiny model gains little from two, and two threads slow down many times over
    when another process is busy on the same cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_trains_and_resumes_mid_epoch_without_repeating_or_skipping_chips(data_root, tmp_path, monkeypatch,
                                                                          one_thread):
    # mmengine checkpoints hold more than weights (see tools/train.py).
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    checkpoints = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4))
    # Persistent workers keep their copy of the dataset from the first epoch: the chip keys must
    # still load each epoch's own chips.
    workers = {'train_dataloader.num_workers': 2, 'train_dataloader.persistent_workers': True}
    full = train(tiny_config(data_root, tmp_path / 'full', 3, default_hooks=checkpoints, **workers))
    losses = np.array(full.losses)
    assert np.isfinite(losses).all() and len(losses) >= 20
    assert losses[-6:].mean() < 0.85 * losses[:6].mean()
    # Each epoch trains on exactly that epoch's chips (one process: no padding), and they change.
    for epoch in range(3):
        assert full.chips_of_epoch(epoch) == full.tables[epoch]
    assert full.tables[0] != full.tables[1]

    # Resume from the checkpoint after 4 iterations of the first epoch: the run goes on with the
    # 5th batch of that epoch and ends where the uninterrupted run ended.
    shutil.copytree(tmp_path / 'full', tmp_path / 'resumed')
    resumed = train(tiny_config(data_root, tmp_path / 'resumed', 3, default_hooks=checkpoints, **workers),
                    resume_from=tmp_path / 'resumed' / 'iter_4.pth')
    assert resumed.chips == full.chips[4:]
    assert np.isfinite(resumed.losses).all()


def logged_losses(work_dir):
    """The losses mmengine's LoggerHook wrote into a tools/train.py work dir."""
    scalars = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    return [json.loads(line)['loss'] for line in Path(scalars[0]).read_text().splitlines() if '"loss"' in line]


def test_torchrun_two_gloo_processes(data_root, tmp_path):
    env = dict(os.environ, SNIPER_DATA_ROOT=f'{data_root}/', PYTHON=sys.executable, PORT='29517',
               OMP_NUM_THREADS='1')
    result = subprocess.run(
        [str(ROOT / 'tools' / 'dist_train.sh'), str(CONFIG), '2', '--work-dir', str(tmp_path / 'dist'),
         '--cfg-options', 'train_cfg.max_epochs=2', 'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
         f'train_dataloader.dataset.cache_dir={tmp_path / "cache"}', 'randomness.seed=0',
         'default_hooks.logger.interval=1', 'log_processor.window_size=1'],
        capture_output=True, text=True, env=env, timeout=600, cwd=str(ROOT))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = (result.stdout + result.stderr)
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    losses = logged_losses(tmp_path / 'dist')
    assert len(losses) >= 4 and np.isfinite(losses).all()
    assert (tmp_path / 'dist' / 'epoch_2.pth').exists()


def test_a_chip_without_boxes_trains_as_background(data_root, one_thread):
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import register_all_modules
    from mmengine.dataset import pseudo_collate

    from mmdet_sniper.datasets import ChipKey
    register_all_modules()
    cfg = tiny_config(data_root, data_root / 'unused', 1)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    first = ChipKey.of(dataset.chips.table(0), 0, epoch=0)
    # The same chip with its image's boxes removed, as for an image without ground truth.
    info = dataset.get_data_info(first)
    info.update(instances=[], chip_instance_valid=np.zeros(0, bool))
    empty = dataset.dataset.pipeline(info)
    assert len(empty['data_samples'].gt_instances) == 0
    model = MODELS.build(cfg.model)
    model.init_weights()
    for items in ([empty], [empty, dataset[first]]):
        losses = model(**model.data_preprocessor(pseudo_collate(items), training=True), mode='loss')
        total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total) and total > 0  # the RPN still learns the chip's background
        total.backward()


def _train_losses(data_root, work_dir, *args):
    env = dict(os.environ, SNIPER_DATA_ROOT=f'{data_root}/', OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), str(CONFIG), '--work-dir', str(work_dir), *args,
         '--cfg-options', 'train_cfg.max_epochs=1', 'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
         f'train_dataloader.dataset.cache_dir={work_dir.parent / "cache"}', 'default_hooks.logger.interval=1',
         'log_processor.window_size=1'],
        capture_output=True, text=True, env=env, timeout=600, cwd=str(ROOT))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return logged_losses(work_dir)


def test_seed_repeats_a_training_run_and_another_seed_changes_it(data_root, tmp_path):
    first = _train_losses(data_root, tmp_path / 'first', '--seed', '5')
    again = _train_losses(data_root, tmp_path / 'again', '--seed', '5', '--deterministic')
    other = _train_losses(data_root, tmp_path / 'other', '--seed', '6')
    assert len(first) >= 4 and np.isfinite(first).all()
    assert first == again
    assert other != first


def test_deterministic_without_seed_is_refused(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), str(CONFIG), '--deterministic',
                             '--work-dir', str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert result.returncode != 0 and '--deterministic needs --seed N' in result.stderr
