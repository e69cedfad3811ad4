"""R-CNN training targets of every SNIPER detector config: a valid object inside an ignore region
(a crowd, an out-of-range box around it) is still learnt, as in the authors' proposal-target op,
which ignores no proposal for lying inside another box; a proposal on the ignore region itself
(IoU > 0.5) is neither object nor background."""
from pathlib import Path

import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmdet_sniper  # noqa: F401  (registers the SNIPER modules)

register_all_modules()
CONFIGS = Path(__file__).parents[2] / 'configs'
TWO_STAGE = sorted(p.name for p in CONFIGS.glob('sniper_faster_rcnn*.py'))


def test_every_two_stage_config_is_checked():
    assert 'sniper_faster_rcnn.py' in TWO_STAGE and len(TWO_STAGE) >= 4


@pytest.mark.parametrize('config', TWO_STAGE)
def test_a_small_valid_box_inside_a_large_ignore_box_gets_positive_rois(config, rng):
    rcnn = Config.fromfile(str(CONFIGS / config)).model.train_cfg.rcnn
    assigner, sampler = TASK_UTILS.build(rcnn.assigner), TASK_UTILS.build(rcnn.sampler)
    target = torch.tensor([[100.0, 100.0, 130.0, 124.0]])
    ignore = torch.tensor([[60.0, 60.0, 220.0, 200.0]])
    # Proposals jittered around the target (most with IoU > 0.5), and elsewhere in the ignore box.
    jitter = torch.from_numpy(rng.uniform(-4, 4, (40, 4))).float()
    elsewhere = torch.tensor([[150.0, 150.0, 200.0, 190.0], [70.0, 70.0, 90.0, 90.0]])
    on_ignore = torch.tensor([[62.0, 58.0, 215.0, 200.0]])
    proposals = torch.cat([target + jitter, elsewhere, on_ignore])
    gt = InstanceData(bboxes=target, labels=torch.tensor([2]))
    result = assigner.assign(InstanceData(priors=proposals), gt, InstanceData(bboxes=ignore, labels=torch.tensor([0])))
    iou = _iou(proposals, target)[:, 0]
    assert ((result.gt_inds[:-1] == 1) == (iou[:-1] >= 0.5)).all()
    assert (result.gt_inds[:-1][iou[:-1] < 0.5] == 0).all()  # background, not ignored
    assert result.gt_inds[-1] == -1 and _iou(on_ignore, ignore) > 0.5
    # As StandardRoIHead samples them, with the ground truth added as a proposal.
    sampled = sampler.sample(result, InstanceData(priors=proposals), gt)
    assert len(sampled.pos_inds) > 0 and (sampled.pos_gt_labels == 2).all()


def _iou(a, b):
    lt, rb = torch.maximum(a[:, None, :2], b[None, :, :2]), torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda boxes: (boxes[:, 2:] - boxes[:, :2]).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)
