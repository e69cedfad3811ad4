"""filter_proposals_by_valid_range against a per-box computation here, and ValidRangeRoIHead.loss on a
tiny Faster R-CNN RoI head."""
import math

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet_sniper.models import ValidRangeRoIHead, filter_proposals_by_valid_range

CHIP = 128


def random_proposals(rng, count, side=(2.0, 160.0)):
    """RPN-like proposals in a chip: log-uniform sides, unique scores, zero labels."""
    xy = rng.uniform(0, CHIP, (count, 2))
    wh = np.exp(rng.uniform(np.log(side[0]), np.log(side[1]), (count, 2)))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return InstanceData(bboxes=torch.from_numpy(boxes).float(), scores=torch.from_numpy(rng.permutation(count)).float(),
                        labels=torch.zeros(count, dtype=torch.long))


def reference_keep(bboxes, valid_range, scale_factor):
    """Per box, in Python floats: is sqrt(w * h / (sx * sy)) in [lo, hi), -1 meaning unbounded."""
    lo, hi = valid_range
    sx, sy = scale_factor
    keep = []
    for x1, y1, x2, y2 in bboxes.tolist():
        size = math.sqrt(max(x2 - x1, 0.0) * max(y2 - y1, 0.0) / (sx * sy))
        keep.append((lo < 0 or size >= lo) and (hi < 0 or size < hi))
    return torch.tensor(keep, dtype=torch.bool)


def assert_same_instances(actual, expected):
    assert set(actual.keys()) == set(expected.keys())
    for key in expected.keys():
        torch.testing.assert_close(actual.get(key), expected.get(key), rtol=0, atol=0)


class TestFilterProposalsByValidRange:

    @pytest.mark.parametrize('valid_range', [(-1, -1), (-1, 40), (24, 90), (60, -1)])
    @pytest.mark.parametrize('scale_factor', [(1.0, 1.0), (2.5, 0.7), (0.3, 1.9)])
    def test_matches_reference_on_random_proposals(self, rng, valid_range, scale_factor):
        proposals = random_proposals(rng, 300)

        kept = filter_proposals_by_valid_range(proposals, valid_range, scale_factor)

        keep = reference_keep(proposals.bboxes, valid_range, scale_factor)
        assert_same_instances(kept, proposals[keep])
        if valid_range == (-1, -1):
            assert keep.all()
        else:
            assert 0 < keep.sum() < len(keep)

    def test_matches_reference_on_proposals_at_the_bounds(self, rng):
        # Chip-pixel sides lo * s and hi * s put the size on a bound up to float32 rounding of the
        # coordinates, where a float32 size computation often lands on the other side.
        valid_range = (32.0, 96.0)
        scale_factor = tuple(rng.uniform(0.2, 3.0, 2))
        bound = np.repeat(valid_range, 100)[:, None]
        xy = rng.uniform(0, CHIP, (200, 2))
        bboxes = torch.from_numpy(np.concatenate([xy, xy + bound * scale_factor], axis=1)).float()
        proposals = InstanceData(bboxes=bboxes, scores=torch.arange(200, dtype=torch.float32))

        kept = filter_proposals_by_valid_range(proposals, valid_range, scale_factor)

        assert_same_instances(kept, proposals[reference_keep(bboxes, valid_range, scale_factor)])

    def test_boundaries(self):
        # Sizes in original pixels under scale factor (2, 0.5): w * h / 1, so size = sqrt(w * h).
        # An inverted box (negative width) has size 0.
        sizes = {(64, 16): 32.0, (63.5, 16): 31.87, (128, 32): 64.0, (127.5, 32): 63.87, (0, 40): 0.0,
                 (30, 0): 0.0, (-5, 40): 0.0}
        bboxes = torch.tensor([[10, 10, 10 + w, 10 + h] for w, h in sizes], dtype=torch.float32)
        proposals = InstanceData(bboxes=bboxes, scores=torch.arange(len(sizes), dtype=torch.float32))

        def kept_sizes(valid_range):
            kept = filter_proposals_by_valid_range(proposals, valid_range, (2.0, 0.5))
            return [list(sizes.values())[int(i)] for i in kept.scores]

        assert kept_sizes((32, 64)) == [32.0, 63.87]
        assert kept_sizes((-1, 64)) == [32.0, 31.87, 63.87, 0.0, 0.0, 0.0]
        assert kept_sizes((32, -1)) == [32.0, 64.0, 63.87]
        assert kept_sizes([-1, -1]) == list(sizes.values())
        assert kept_sizes(np.array([32, 64])) == [32.0, 63.87]

    def test_a_proposal_with_a_nan_coordinate_is_dropped_even_without_bounds(self):
        bboxes = torch.tensor([[0, 0, 40, 40], [0, 0, float('nan'), 40], [10, 10, 30, 30]])
        proposals = InstanceData(bboxes=bboxes, scores=torch.arange(3, dtype=torch.float32))

        for valid_range in ((-1, -1), (-1, 64), (16, 64)):
            kept = filter_proposals_by_valid_range(proposals, valid_range, (1.0, 1.0))
            assert kept.scores.tolist() == [0.0, 2.0]

    def test_a_bad_range_is_an_error_naming_it(self):
        proposals = InstanceData(bboxes=torch.zeros((1, 4)), scores=torch.zeros(1))
        with pytest.raises(ValueError, match='valid_range must have lo < hi'):
            filter_proposals_by_valid_range(proposals, (64, 16), (1.0, 1.0))

    def test_empty_proposals(self):
        proposals = InstanceData(bboxes=torch.zeros((0, 4)), scores=torch.zeros(0))

        kept = filter_proposals_by_valid_range(proposals, (16, 64), (1.5, 1.5))

        assert kept.bboxes.shape == (0, 4) and kept.scores.shape == (0,)


ROI_HEAD = dict(
    type='ValidRangeRoIHead',
    bbox_roi_extractor=dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                            out_channels=8, featmap_strides=[4]),
    bbox_head=dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=7, num_classes=3,
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                   target_stds=[0.1, 0.1, 0.2, 0.2]),
                   reg_class_agnostic=False, loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                   loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                 match_low_quality=False, ignore_iof_thr=-1),
                   sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                                add_gt_as_proposals=True),
                   pos_weight=-1, debug=False),
    test_cfg=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))

# (chip_valid_range or None, scale_factor) per chip of the batch.
CHIPS = [((-1, 40), (1.5, 1.0)), ((24, 90), (1.2, 0.8)), ((60, -1), (0.5, 0.6)), (None, (1.0, 1.0))]


def data_sample(rng, valid_range, scale_factor):
    metainfo = dict(img_shape=(CHIP, CHIP), pad_shape=(CHIP, CHIP), scale_factor=scale_factor)
    if valid_range is not None:
        metainfo['chip_valid_range'] = valid_range
    sample = DetDataSample(metainfo=metainfo)
    gt = random_proposals(rng, 5, side=(8.0, 60.0))
    sample.gt_instances = InstanceData(bboxes=gt.bboxes, labels=torch.from_numpy(rng.integers(0, 3, 5)))
    sample.ignored_instances = InstanceData(bboxes=torch.zeros((0, 4)))
    return sample


def test_loss_trains_on_the_in_range_proposals_only(rng, monkeypatch):
    register_all_modules()
    head = MODELS.build(ConfigDict(ROI_HEAD))
    assert isinstance(head, ValidRangeRoIHead)
    samples = [data_sample(rng, valid_range, scale_factor) for valid_range, scale_factor in CHIPS]
    proposals = [random_proposals(rng, 200) for _ in CHIPS]
    expected = [p[reference_keep(p.bboxes, r, f)] if r is not None else p.clone()
                for p, (r, f) in zip(proposals, CHIPS)]
    seen = []
    assign = head.bbox_assigner.assign

    def recording_assign(pred_instances, *args, **kwargs):
        seen.append(pred_instances.clone())
        return assign(pred_instances, *args, **kwargs)

    monkeypatch.setattr(head.bbox_assigner, 'assign', recording_assign)
    x = (torch.randn(len(CHIPS), 8, CHIP // 4, CHIP // 4),)

    losses = head.loss(x, proposals, samples)

    assert len(seen) == len(CHIPS)
    for received, want in zip(seen, expected):
        want.priors = want.pop('bboxes')
        assert_same_instances(received, want)
    assert all(0 < len(e) < 200 for e in expected[:-1]) and len(expected[-1]) == 200
    assert set(losses) >= {'loss_cls', 'loss_bbox'}
    assert all(torch.isfinite(v).all() for v in losses.values())
