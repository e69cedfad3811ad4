"""IgnoreRegionAssigner against the inner assigner plus an IoU computed here with plain loops."""

import numpy as np
import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from mmdet_sniper.models import IgnoreRegionAssigner

INNER = dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True,
             ignore_iof_thr=-1)


def build(inner=INNER, **kwargs):
    assigner = TASK_UTILS.build(dict(type='IgnoreRegionAssigner', assigner=inner, **kwargs))
    assert isinstance(assigner, IgnoreRegionAssigner)
    return assigner


def reference_iou(a, b):
    """IoU of every row of ``a`` with every row of ``b``, float64; 0 where the union is empty."""
    iou = np.zeros((len(a), len(b)))
    for i, (ax1, ay1, ax2, ay2) in enumerate(np.asarray(a, dtype=np.float64)):
        for j, (bx1, by1, bx2, by2) in enumerate(np.asarray(b, dtype=np.float64)):
            inter = max(min(ax2, bx2) - max(ax1, bx1), 0) * max(min(ay2, by2) - max(ay1, by1), 0)
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            iou[i, j] = inter / union if union > 0 else 0.0
    return iou


def random_boxes(rng, count, extent=200.0, side=(4.0, 80.0)):
    xy = rng.uniform(0, extent, (count, 2))
    wh = rng.uniform(*side, (count, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def jittered(rng, boxes, copies, amount=0.15):
    """``copies`` noisy copies of each box, most with a high IoU to it."""
    boxes = np.repeat(boxes, copies, axis=0)
    wh = np.repeat(boxes[:, 2:] - boxes[:, :2], 2, axis=1)
    return (boxes + rng.uniform(-amount, amount, boxes.shape) * wh).astype(np.float32)


def centres(boxes):
    """The middle quarter of each box: IoF 1 but IoU 1/16 with it."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + wh * 3 / 8, boxes[:, 2:] - wh * 3 / 8], axis=1)


def instances(gt, ignore, box_type):
    as_type = HorizontalBoxes if box_type == 'hbox' else (lambda t: t)
    gt_instances = InstanceData(bboxes=torch.from_numpy(gt).reshape(-1, 4),
                                labels=torch.arange(len(gt), dtype=torch.long) % 3)
    ignore_instances = None if ignore is None else InstanceData(bboxes=as_type(torch.from_numpy(ignore).reshape(-1, 4)))
    return gt_instances, ignore_instances


def expected(inner_cfg, prior_array, gt_instances, ignore_instances, ignore_array, thr):
    """The inner assigner's result with the priors of max IoU > thr to an ignore box set to -1."""
    result = TASK_UTILS.build(inner_cfg).assign(InstanceData(priors=torch.from_numpy(prior_array)), gt_instances,
                                                ignore_instances)
    ignored = torch.from_numpy(reference_iou(prior_array, ignore_array).max(axis=1) > thr)
    gt_inds = result.gt_inds.clone()
    gt_inds[ignored] = -1
    labels = result.labels.clone()
    labels[ignored] = -1
    return result, gt_inds, labels, ignored


def assert_result(result, inner, gt_inds, labels):
    assert result.num_gts == inner.num_gts
    torch.testing.assert_close(result.gt_inds, gt_inds, rtol=0, atol=0)
    torch.testing.assert_close(result.labels, labels, rtol=0, atol=0)
    torch.testing.assert_close(result.max_overlaps, inner.max_overlaps, rtol=0, atol=0)


@pytest.mark.parametrize('box_type', ['tensor', 'hbox'])
@pytest.mark.parametrize('thr', [0.3, 0.5])
@pytest.mark.parametrize('inner_ignore_iof_thr', [-1, 0.6])
def test_matches_reference_on_random_boxes(rng, box_type, thr, inner_ignore_iof_thr):
    gt = random_boxes(rng, 6)
    ignore = random_boxes(rng, 4)
    prior_array = np.concatenate([random_boxes(rng, 150), jittered(rng, gt, 6), jittered(rng, ignore, 6),
                                  centres(ignore)])
    priors = torch.from_numpy(prior_array)
    priors = HorizontalBoxes(priors) if box_type == 'hbox' else priors
    gt_instances, ignore_instances = instances(gt, ignore, box_type)
    inner_cfg = dict(INNER, ignore_iof_thr=inner_ignore_iof_thr)

    result = build(inner_cfg, ignore_iou_thr=thr).assign(InstanceData(priors=priors), gt_instances,
                                                         ignore_instances)

    inner, gt_inds, labels, ignored = expected(inner_cfg, prior_array, gt_instances, ignore_instances, ignore, thr)
    assert_result(result, inner, gt_inds, labels)
    # The inputs must exercise the rule: some positives survive, and some priors the inner assigner
    # had decided on are ignored or (with its own IoF rule on) some it ignored are outside ours.
    assert (~ignored & (inner.gt_inds > 0)).any()
    if inner_ignore_iof_thr < 0:
        assert (ignored & (inner.gt_inds >= 0)).any()
    else:
        without = TASK_UTILS.build(inner_cfg).assign(InstanceData(priors=priors), gt_instances)
        assert (~ignored & (inner.gt_inds != without.gt_inds)).any()


@pytest.mark.parametrize('ignore', [None, np.zeros((0, 4), np.float32)], ids=['none', 'empty'])
def test_without_ignore_boxes_is_the_inner_result(rng, ignore):
    gt = random_boxes(rng, 5)
    priors = torch.from_numpy(np.concatenate([random_boxes(rng, 100), jittered(rng, gt, 4)]))
    gt_instances, ignore_instances = instances(gt, ignore, 'tensor')

    result = build().assign(InstanceData(priors=priors), gt_instances, ignore_instances)

    inner = TASK_UTILS.build(INNER).assign(InstanceData(priors=priors), gt_instances, ignore_instances)
    assert_result(result, inner, inner.gt_inds, inner.labels)


def test_without_priors_is_the_inner_result(rng):
    gt_instances, ignore_instances = instances(random_boxes(rng, 3), random_boxes(rng, 2), 'tensor')
    priors = torch.zeros((0, 4))

    result = build().assign(InstanceData(priors=priors), gt_instances, ignore_instances)

    assert result.gt_inds.shape == result.labels.shape == result.max_overlaps.shape == (0,)
    assert result.num_gts == 3


@pytest.mark.parametrize('box_type', ['tensor', 'hbox'])
def test_without_gt_all_negative_but_the_ignored(rng, box_type):
    ignore = random_boxes(rng, 3)
    prior_array = np.concatenate([random_boxes(rng, 100), jittered(rng, ignore, 5)])
    gt_instances, ignore_instances = instances(np.zeros((0, 4), np.float32), ignore, box_type)

    result = build().assign(InstanceData(priors=torch.from_numpy(prior_array)), gt_instances, ignore_instances)

    ignored = torch.from_numpy(reference_iou(prior_array, ignore).max(axis=1) > 0.3)
    assert ignored.any() and not ignored.all()
    torch.testing.assert_close(result.gt_inds, torch.where(ignored, -1, 0), rtol=0, atol=0)
    torch.testing.assert_close(result.labels, torch.full_like(result.labels, -1), rtol=0, atol=0)
    assert result.num_gts == 0


def test_degenerate_ignore_boxes_ignore_nothing(rng):
    gt = random_boxes(rng, 4)
    prior_array = np.concatenate([random_boxes(rng, 100), jittered(rng, gt, 4)])
    x, y = rng.uniform(20, 180, 2)
    # A vertical line, a horizontal line and a point: IoU 0 with every prior, copies of themselves too.
    ignore = np.array([[x, y, x, y + 50], [x, y, x + 50, y], [x, y, x, y]], np.float32)
    priors = torch.from_numpy(np.concatenate([prior_array, ignore]))
    gt_instances, ignore_instances = instances(gt, ignore, 'tensor')

    result = build().assign(InstanceData(priors=priors), gt_instances, ignore_instances)

    inner = TASK_UTILS.build(INNER).assign(InstanceData(priors=priors), gt_instances, ignore_instances)
    assert_result(result, inner, inner.gt_inds, inner.labels)


@pytest.mark.parametrize('thr,height', [(0.3, 3.0), (0.25, 2.5), (0.5, 5.0)])
def test_iou_equal_to_threshold_is_not_ignored(thr, height):
    # The first prior's IoU with the ignore box [0, 0, 10, h] is h / 10 == thr (float32 rounds the
    # quotient as it rounds thr in the comparison); the second's is just above thr.
    ignore = np.array([[0, 0, 10, height]], np.float32)
    priors = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10 * height / (height + 0.01)]], dtype=torch.float32)
    gt_instances, ignore_instances = instances(np.array([[500, 500, 520, 520]], np.float32), ignore, 'tensor')

    result = build(ignore_iou_thr=thr).assign(InstanceData(priors=priors), gt_instances, ignore_instances)

    assert result.gt_inds.tolist() == [0, -1]
    assert result.labels.tolist() == [-1, -1]


def test_small_prior_inside_large_ignore_box_is_not_ignored():
    # IoU 0.01 although IoF is 1: the prior stays a negative, unlike with MaxIoUAssigner's ignore_iof_thr.
    gt_instances, ignore_instances = instances(np.array([[500, 500, 520, 520]], np.float32),
                                               np.array([[0, 0, 100, 100]], np.float32), 'tensor')
    priors = torch.tensor([[40.0, 40.0, 50.0, 50.0]])

    result = build().assign(InstanceData(priors=priors), gt_instances, ignore_instances)

    assert result.gt_inds.tolist() == [0]
