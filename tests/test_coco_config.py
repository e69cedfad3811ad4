"""The COCO detector config's optimisation (lr 0.12 for 128 chips, warm-up, trained BatchNorm, the
clipping guard), scaled by mmdet's linear rule to a batch of 2 chips, trains R50-FPN on CPU for 32
iterations without diverging, the second half at the full lr. Synthetic images and random weights: no
ImageNet weights are fetched."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmdet_sniper  # noqa: F401
from mmdet_sniper.testing.synthetic_coco import CLASSES, write_synthetic_coco

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BATCH, ITERS = 2, 32


class RecordLosses(Hook):

    def __init__(self):
        self.losses, self.lrs = [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss']))
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def test_the_r50_coco_config_trains_32_iterations_at_its_scaled_lr_without_diverging(tmp_path):
    root = tmp_path / 'coco'
    write_synthetic_coco(str(root), 12, seed=0, image_size=(640, 480), objects_per_image=(4, 10),
                         size_range=(12, 300))
    cfg = Config.fromfile(str(ROOT / 'configs' / 'sniper_faster_rcnn.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.randomness = dict(seed=0)
    cfg.model.backbone.init_cfg = None
    loader = cfg.train_dataloader
    loader.update(batch_size=BATCH, num_workers=0, persistent_workers=False)
    loader.dataset.cache_dir = None
    loader.dataset.dataset.update(data_root=f'{root}/', ann_file='annotations.json', data_prefix=dict(img='images/'),
                                  metainfo=dict(classes=CLASSES))
    # The config's schedule scaled to 2 chips a step: lr by mmdet's linear rule (--auto-scale-lr),
    # the warm-up by the same factor, so that the run's second half trains at the full lr.
    scale = BATCH / cfg.auto_scale_lr.base_batch_size
    cfg.auto_scale_lr.enable = True
    warmup = cfg.param_scheduler[0]
    warmup.end = int(round(warmup.end * scale))
    assert warmup.end <= ITERS // 2
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS, val_interval=ITERS + 1)
    cfg.param_scheduler = [warmup]
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=ITERS + 1, by_epoch=False)
    cfg.log_processor = dict(by_epoch=False)
    runner = Runner.from_cfg(cfg)
    recorder = RecordLosses()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    losses = np.array(recorder.losses)
    assert len(losses) == ITERS and np.isfinite(losses).all()
    assert recorder.lrs[-1] == pytest.approx(0.12 * scale)
    assert losses[-10:].mean() < losses[:10].mean()
    # Trained BatchNorm: its running statistics moved from their initial values.
    bn = runner.model.backbone.layer2[0].bn1
    assert bn.weight.requires_grad and not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
