"""SniperTestScale and SniperTestTimeAug: the valid-range rule and the merge against computations written
here with plain loops, the tiny Faster R-CNN end to end, and sliced inference with a fake detector that
sees known objects."""
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS, TRANSFORMS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose, pseudo_collate
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

import mmdet_sniper  # noqa: F401  (registers the SNIPER modules)
from mmdet_sniper.models.sniper_tta import VIEW_TEST_CFG, SniperTestTimeAug, keep_in_valid_range
from mmdet_sniper.testing.known_objects import KnownObjectsDetector
from mmdet_sniper.testing.positions import encoded_view
from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco
from mmdet_sniper.transforms.test_scale import SniperTestScale, SniperTestViews

register_all_modules()

TINY_CONFIG = Path(__file__).parents[2] / 'configs' / 'sniper_faster_rcnn_r18_tiny_cpu.py'
NMS = dict(type='nms', iou_threshold=0.5)
SOFT_NMS = dict(type='soft_nms', method='gaussian', sigma=0.55, min_score=1e-3)
RANGES = ((-1, 90), (32, 180), (75, -1))  # the authors' COCO test ranges


class NoDetector(BaseModel):
    """Stands in for the detector where only the merge of given predictions is tested."""

    def forward(self, inputs, data_samples=None, mode='tensor'):
        raise AssertionError('the merge tests never run a detector')


def tta(nms=NMS, max_per_img=100, module=None, view_cfg=None, **kwargs):
    """The TTA model; the stand-in detectors have no test_cfg for a view_cfg to set."""
    return SniperTestTimeAug(module=module or NoDetector(), tta_cfg=dict(nms=nms, max_per_img=max_per_img),
                             view_cfg=view_cfg, **kwargs)


def view(boxes, scores, labels, valid_range, ori_shape=(600, 800), flip=False):
    """A view's prediction in original pixels (horizontally flipped if ``flip``), as a detector returns it."""
    metainfo = dict(ori_shape=ori_shape, flip=flip, flip_direction='horizontal' if flip else None)
    if valid_range is not None:
        metainfo['valid_range'] = valid_range
    sample = DetDataSample(metainfo=metainfo)
    sample.pred_instances = InstanceData(bboxes=torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4)),
                                         scores=torch.as_tensor(np.asarray(scores, np.float32)),
                                         labels=torch.as_tensor(np.asarray(labels, np.int64)))
    return sample


def reference_keep(boxes, valid_range):
    lo, hi = valid_range
    keep = []
    for x1, y1, x2, y2 in np.asarray(boxes, np.float32).tolist():
        area = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
        keep.append((lo < 0 or area > lo ** 2) and (hi < 0 or area <= hi ** 2))
    return np.array(keep, dtype=bool)


def reference_iou(a, b):
    inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes, scores, iou_threshold):
    """Greedy NMS of one class: (box, score) kept."""
    kept = []
    for i in np.argsort(-scores, kind='stable'):
        if all(reference_iou(boxes[i], box) <= iou_threshold for box, _ in kept):
            kept.append((boxes[i], scores[i]))
    return kept


def reference_soft_nms(boxes, scores, sigma=0.55, min_score=1e-3):
    """Gaussian soft-NMS of one class: take the best, decay the rest by exp(-iou^2 / sigma), drop the faint."""
    boxes, scores = list(boxes), list(np.asarray(scores, np.float64))
    kept = []
    while boxes:
        best = int(np.argmax(scores))
        box, score = boxes.pop(best), scores.pop(best)
        kept.append((box, score))
        scores = [s * math.exp(-reference_iou(box, b) ** 2 / sigma) for b, s in zip(boxes, scores)]
        boxes = [b for b, s in zip(boxes, scores) if s >= min_score]
        scores = [s for s in scores if s >= min_score]
    return kept


def reference_merge(views, suppress, max_per_img):
    """Filter each view by its range, un-flip it, suppress per class, keep the best: sorted rows
    (label, x1, y1, x2, y2, score)."""
    boxes, scores, labels = [], [], []
    for sample in views:
        pred = sample.pred_instances
        keep = reference_keep(pred.bboxes.numpy(), sample.valid_range)
        b = pred.bboxes.numpy()[keep].astype(np.float64)
        if sample.flip:
            width = sample.ori_shape[1]
            b = np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1)
        boxes.append(b)
        scores.append(pred.scores.numpy()[keep])
        labels.append(pred.labels.numpy()[keep])
    boxes, scores, labels = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
    rows = [(label, *box, score) for label in np.unique(labels)
            for box, score in suppress(boxes[labels == label], scores[labels == label])]
    rows.sort(key=lambda row: -row[-1])
    return sorted(rows[:max_per_img])


def result_rows(sample):
    pred = sample.pred_instances
    return sorted((int(label), *box, float(score)) for box, score, label in
                  zip(pred.bboxes.double().numpy(), pred.scores.double().numpy(), pred.labels.numpy()))


def random_views(rng, count=60, width=800, height=600):
    """Three views of clustered detections (so that suppression matters), the last two flipped."""
    views = []
    centres = rng.uniform([0, 0], [width, height], (12, 2))
    for valid_range, flip in zip(RANGES, (False, True, True)):
        centre = centres[rng.integers(0, len(centres), count)]
        side = np.exp(rng.uniform(np.log(10), np.log(300), (count, 1))) * rng.uniform(0.8, 1.25, (count, 2))
        boxes = np.concatenate([centre - side / 2, centre + side / 2], axis=1)
        boxes += rng.normal(0, 3, boxes.shape)
        boxes = np.clip(boxes, 0, [width, height, width, height])
        if flip:
            boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
        views.append(view(boxes, rng.uniform(0.05, 1.0, count), rng.integers(0, 3, count), valid_range,
                          (height, width), flip))
    return views


class TestKeepInValidRange:

    def test_bounds(self):
        boxes = torch.tensor([[0, 0, 32, 32], [0, 0, 32, 32.5], [10, 10, 100, 100], [10, 10, 100, 100.5],
                              [0, 0, 45, 180], [0, 0, 0, 50], [5, 5, 0, 0]], dtype=torch.float32)

        assert keep_in_valid_range(boxes, (32, 90)).tolist() == [False, True, True, False, True, False, False]
        assert keep_in_valid_range(boxes, (-1, 90)).tolist() == [True, True, True, False, True, True, True]
        assert keep_in_valid_range(boxes, (32, -1)).tolist() == [False, True, True, True, True, False, False]
        assert keep_in_valid_range(boxes, (-1, -1)).all()
        assert keep_in_valid_range(boxes[:0], (32, 90)).shape == (0,)

    def test_a_box_with_a_nan_coordinate_is_never_kept(self):
        boxes = torch.tensor([[0, 0, 50, 50], [0, float('nan'), 50, 50]])
        for valid_range in ((-1, -1), (32, 90)):
            assert keep_in_valid_range(boxes, valid_range).tolist() == [True, False]

    @pytest.mark.parametrize('valid_range', [(-1, 90), (32, 180), (75, -1), (-1, -1), (0, 20.5)])
    def test_matches_reference_on_random_boxes(self, rng, valid_range):
        xy = rng.uniform(0, 1000, (500, 2))
        # Whole-pixel sides land some boxes on the bounds.
        boxes = np.concatenate([xy, xy + rng.integers(1, 250, (500, 2))], axis=1).astype(np.float32)
        boxes[:5] = [[0, 0, 32, 32], [0, 0, 90, 90], [0, 0, 75, 75], [0, 0, 180, 180], [1, 1, 21.5, 21.5]]

        keep = keep_in_valid_range(torch.from_numpy(boxes), valid_range)

        assert keep.dtype == torch.bool
        np.testing.assert_array_equal(keep.numpy(), reference_keep(boxes, valid_range))


class TestMerge:

    def test_hand_built_views_with_nms(self):
        width = 800
        # Original pixels; the flipped views report their boxes mirrored, as a detector on a flipped image does.
        mirror = lambda boxes: [[width - x2, y1, width - x1, y2] for x1, y1, x2, y2 in boxes]  # noqa: E731
        views = [
            # 20x20 and 50x50 are in range; 200x200 is too large for the finest scale.
            view([[10, 10, 30, 30], [100, 100, 150, 150], [300, 300, 500, 500]], [0.9, 0.6, 0.95], [0, 1, 2],
                 (-1, 90)),
            # 20x20 is too small here; its 50x50 beats the first view's and a 100x100 of another class
            # overlaps it without suppression across classes.
            view(mirror([[12, 12, 32, 32], [102, 100, 152, 150], [100, 100, 200, 200]]), [0.99, 0.7, 0.5], [0, 1, 0],
                 (32, 180), flip=True),
            # Only the 200x200 (two overlapping detections of it) is in range at the coarsest scale.
            view(mirror([[301, 300, 501, 500], [305, 300, 505, 500], [104, 100, 154, 150]]), [0.8, 0.85, 0.97],
                 [2, 2, 1], (75, -1), flip=True),
        ]

        result = tta()._merge_single_sample(views)

        expected = sorted([(0, 10, 10, 30, 30, 0.9), (1, 102, 100, 152, 150, 0.7), (0, 100, 100, 200, 200, 0.5),
                           (2, 305, 300, 505, 500, 0.85)])
        np.testing.assert_allclose(np.array(result_rows(result)), np.array(expected), rtol=0, atol=1e-6)
        assert result.ori_shape == (600, 800)

    @pytest.mark.parametrize('max_per_img', [100, 25])
    def test_random_views_with_nms(self, rng, max_per_img):
        views = random_views(rng)
        expected = reference_merge(views, lambda b, s: reference_nms(b, s, 0.5), max_per_img)

        result = tta(NMS, max_per_img)._merge_single_sample(copy.deepcopy(views))

        assert len(expected) > 0
        np.testing.assert_allclose(np.array(result_rows(result)), np.array(expected), rtol=0, atol=1e-4)

    @pytest.mark.parametrize('max_per_img', [100, 25])
    def test_random_views_with_gaussian_soft_nms(self, rng, max_per_img):
        views = random_views(rng)
        expected = reference_merge(views, reference_soft_nms, max_per_img)

        result = tta(SOFT_NMS, max_per_img)._merge_single_sample(copy.deepcopy(views))

        np.testing.assert_allclose(np.array(result_rows(result)), np.array(expected), rtol=0, atol=1e-4)

    def test_defaults_to_the_authors_soft_nms(self):
        model = SniperTestTimeAug(module=NoDetector(), view_cfg=None)

        assert model.tta_cfg.nms == SOFT_NMS and model.tta_cfg.max_per_img == 100

    @pytest.mark.parametrize('empty_by', ['no detections', 'filtering'])
    def test_nothing_left_gives_an_empty_prediction(self, empty_by):
        if empty_by == 'no detections':
            views = [view([], [], [], r) for r in RANGES]
        else:
            views = [view([[0, 0, 200, 200]], [0.9], [0], (-1, 90)), view([[0, 0, 10, 10]], [0.8], [1], (32, 180)),
                     view([[0, 0, 20, 20]], [0.7], [2], (75, -1), flip=True)]

        pred = tta().merge_preds([views])[0].pred_instances

        assert pred.bboxes.shape == (0, 4) and pred.scores.shape == (0,) and pred.labels.shape == (0,)

    def test_a_view_without_valid_range_is_an_error(self):
        views = [view([[0, 0, 20, 20]], [0.9], [0], (-1, 90)), view([[0, 0, 50, 50]], [0.8], [0], None)]

        with pytest.raises(KeyError, match="valid_range.*SniperTestScale.*meta_keys"):
            tta().merge_preds([views])

    @pytest.mark.parametrize('kwargs, message', [
        (dict(tta_cfg=dict(nms=NMS)), 'max_per_img'), (dict(chip_size=0), 'chip_size'),
        (dict(tile_overlap=512), 'tile_overlap'), (dict(tile_overlap=-1), 'tile_overlap'),
        (dict(tiles_per_batch=0), 'tiles_per_batch'),
        (dict(view_cfg=dict(score_thr=0.05)), 'view_cfg must hold exactly'),
        (dict(), 'view_cfg needs a detector with roi_head.test_cfg or bbox_head.test_cfg')])
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            SniperTestTimeAug(module=NoDetector(), **kwargs)


class TestSniperTestScale:

    def test_resizes_as_resize_and_records_the_range(self):
        image = np.zeros((480, 640, 3), np.uint8)
        scale = TRANSFORMS.build(dict(type='SniperTestScale', scale=(1400, 2000), valid_range=(-1, 90)))
        resize = TRANSFORMS.build(dict(type='Resize', scale=(2000, 1400), keep_ratio=True))

        results = scale(dict(img=image.copy()))
        expected = resize(dict(img=image.copy()))

        assert isinstance(scale, SniperTestScale)
        assert results['valid_range'] == (-1, 90)
        assert results['img_shape'] == expected['img_shape'] == (1400, 1867)
        np.testing.assert_allclose(results['scale_factor'], expected['scale_factor'])
        assert 'valid_range=(-1, 90)' in repr(scale)

    @pytest.mark.parametrize('valid_range, message', [
        ((32,), 'pair'), ('ab', 'pair'), ((90, 32), 'lo < hi'), ((32, 32), 'lo < hi'), ((-2, 90), 'lo must be -1'),
        ((32, -5), 'hi must be -1'), ((None, 90), 'lo must be -1')])
    def test_bad_valid_range(self, valid_range, message):
        with pytest.raises(ValueError, match=f'valid_range.*{message}|{message}.*valid_range'):
            SniperTestScale(scale=(800, 1280), valid_range=valid_range)

    def test_keep_ratio_cannot_be_turned_off(self):
        with pytest.raises(ValueError, match='keep_ratio'):
            SniperTestScale(scale=(800, 1280), valid_range=(-1, 90), keep_ratio=False)


class TestSniperTestViews:

    def test_every_scale_with_its_range_flipped_and_not(self):
        views = TRANSFORMS.build(dict(type='SniperTestViews', scales=((480, 640), (240, 320)),
                                      valid_ranges=((-1, 40), (20, -1)), flip=True, with_annotations=False))
        out = views(dict(img=np.zeros((240, 320, 3), np.uint8), img_id=0, img_path='x.jpg', ori_shape=(240, 320)))
        samples = out['data_samples']
        assert len(samples) == 4
        got = sorted((s.img_shape, s.valid_range, s.flip) for s in samples)
        assert got == sorted([((480, 640), (-1, 40), True), ((480, 640), (-1, 40), False),
                              ((240, 320), (20, -1), True), ((240, 320), (20, -1), False)])

    def test_no_flip_by_default_and_each_view_says_so(self):
        # DetTTAModel's merge reads flip and flip_direction from every view (a KeyError without them).
        views = TRANSFORMS.build(dict(type='SniperTestViews', scales=((480, 640), (240, 320)),
                                      valid_ranges=((-1, 40), (20, -1)), with_annotations=False))
        out = views(dict(img=np.zeros((240, 320, 3), np.uint8), img_id=0, img_path='x.jpg', ori_shape=(240, 320)))
        assert [(s.img_shape, s.flip, s.flip_direction) for s in out['data_samples']] == [
            ((480, 640), False, None), ((240, 320), False, None)]

    def test_factors_and_sides_mix(self):
        # 2x and 1x as factors, the last view with its long side at 256 px (a (short, long) pair).
        views = TRANSFORMS.build(dict(type='SniperTestViews', scales=(2.0, 1, (256, 256)),
                                      valid_ranges=((-1, 40), (20, 80), (56, -1)), flip=False, with_annotations=False))
        out = views(dict(img=np.zeros((300, 500, 3), np.uint8), img_id=0, img_path='x.jpg', ori_shape=(300, 500)))
        got = [(s.img_shape, s.valid_range) for s in out['data_samples']]
        assert got == [((600, 1000), (-1, 40)), ((300, 500), (20, 80)), ((154, 256), (56, -1))]

    @pytest.mark.parametrize('kwargs, message', [
        (dict(scales=((800, 1280),), valid_ranges=()), 'one range per scale'),
        (dict(scales=(), valid_ranges=()), 'one range per scale'),
        (dict(scales=(0.0,), valid_ranges=((-1, -1),)), 'factor > 0 or a'),
        (dict(scales=((800, 1280, 3),), valid_ranges=((-1, -1),)), 'factor > 0 or a'),
        (dict(scales=('2x',), valid_ranges=((-1, -1),)), 'factor > 0 or a'),
        (dict(scales=((800, 1280),), valid_ranges=((-1, 90),), meta_keys=('img_id',)), "must hold 'valid_range'"),
        (dict(scales=(2.0, 1.0), valid_ranges=((-1, 90), (90, 32))), r'valid_ranges\[1\] must have lo < hi')])
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            SniperTestViews(**kwargs)


def tta_pipeline(scales, ranges, flip=True):
    return Compose([dict(type='LoadImageFromFile'),
                    dict(type='SniperTestViews', scales=scales, valid_ranges=ranges, flip=flip,
                         with_annotations=False)])


@pytest.fixture(scope='module')
def tiny_detector():
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(TINY_CONFIG)).model)
    return model.eval()


class TestTinyDetector:
    SCALES = ((480, 640), (240, 320), (128, 128))  # 2x, 1x and longest side 128 for 320x240
    RANGES = ((-1, 40), (20, 90), (60, -1))

    @pytest.mark.parametrize('image_size, flip', [((320, 240), True), ((60, 40), True), ((320, 240), False)])
    @pytest.mark.parametrize('sliced', [False, True])
    def test_end_to_end(self, tmp_path, tiny_detector, image_size, flip, sliced):
        write_synthetic_coco(str(tmp_path), 1, seed=0, image_size=image_size, size_range=(8, 120))
        image = dict(img_path=str(tmp_path / 'images' / '000000.jpg'), img_id=0)
        item = tta_pipeline(self.SCALES, self.RANGES, flip)(image)
        data = pseudo_collate([item])
        own_test_cfg = copy.deepcopy(tiny_detector.roi_head.test_cfg)
        model = tta(NMS, max_per_img=30, module=tiny_detector, view_cfg=VIEW_TEST_CFG, sliced=sliced, chip_size=256,
                    tiles_per_batch=4)
        with torch.no_grad():
            # Each view alone through the detector (whole or tiled) under the view limits: the merge
            # must pick among their in-range detections.
            views = copy.deepcopy(data)
            with model.view_settings():
                if sliced:
                    model._predict_in_tiles([(inputs[0], samples[0])
                                             for inputs, samples in zip(views['inputs'], views['data_samples'])])
                    candidates = [samples[0] for samples in views['data_samples']]
                else:
                    candidates = [tiny_detector.test_step(dict(inputs=inputs, data_samples=samples))[0]
                                  for inputs, samples in zip(views['inputs'], views['data_samples'])]

            (result,) = model.test_step(data)
        # The test-time model leaves the detector's own limits as they were.
        assert tiny_detector.roi_head.test_cfg == own_test_cfg

        width, height = image_size
        assert result.ori_shape == (height, width) and len(data['inputs']) == (6 if flip else 3)
        pred = result.pred_instances
        assert 0 < len(pred) <= 30
        boxes = pred.bboxes
        assert (boxes >= -1e-3).all() and (boxes[:, [0, 2]] <= width + 1e-3).all()
        assert (boxes[:, [1, 3]] <= height + 1e-3).all()
        allowed = reference_merge(candidates, lambda b, s: list(zip(b, s)), 10 ** 6)
        for row in result_rows(result):
            assert np.isclose(np.array(allowed), np.array(row), rtol=0, atol=1e-3).all(axis=1).any(), row


class TestViewLimits:
    """Each view keeps every detection above 1e-3, without NMS, up to 1000 (the authors' per-scale rule),
    where the detector's own test_cfg would stop at 0.05, NMS 0.5 and 100."""

    @staticmethod
    def predict(detector, image):
        inputs = [torch.from_numpy(image).permute(2, 0, 1)]
        samples = [DetDataSample(metainfo=dict(img_shape=image.shape[:2], ori_shape=image.shape[:2],
                                               scale_factor=(1.0, 1.0)))]
        with torch.no_grad():
            return detector.test_step(dict(inputs=inputs, data_samples=samples))[0].pred_instances

    @staticmethod
    def overlapping_pairs_of_a_class(pred):
        from mmdet.structures.bbox import bbox_overlaps
        same = pred.labels[:, None] == pred.labels[None, :]
        iou = bbox_overlaps(pred.bboxes, pred.bboxes).masked_fill(~same, 0).triu(diagonal=1)
        return int((iou > 0.5).sum())

    @pytest.mark.parametrize('config', ['sniper_faster_rcnn_r18_tiny_cpu.py', 'sniper_retinanet.py'])
    def test_views_keep_low_scores_and_overlaps_up_to_the_cap(self, rng, config):
        cfg = Config.fromfile(str(TINY_CONFIG.parent / config)).model
        if config == 'sniper_retinanet.py':  # small and untrained is enough: only the limits matter here
            cfg.backbone.update(depth=18, init_cfg=None, base_channels=16)
            cfg.neck.update(in_channels=[16, 32, 64, 128], out_channels=32)
            cfg.bbox_head.update(in_channels=32, feat_channels=32, stacked_convs=1, num_classes=3)
        torch.manual_seed(0)
        detector = MODELS.build(cfg).eval()
        # Every box scores the same per class: 0.12 (class 0), 0.006 (class 1) and 0.0003 (class 2).
        if config == 'sniper_retinanet.py':  # sigmoid scores
            classifier, logits = detector.bbox_head.retina_cls, [-2.0, -5.1, -8.1]
        else:  # softmax over the classes and the background, last
            classifier, logits = detector.roi_head.bbox_head.fc_cls, [0.0, -3.0, -6.0, 2.0]
        with torch.no_grad():
            classifier.weight.zero_()
            classifier.bias.view(-1, len(logits)).copy_(torch.tensor(logits))
        image = (rng.uniform(size=(64, 64, 3)) * 255).astype(np.uint8)
        own = self.predict(detector, image)
        assert 0 < len(own) <= 100 and set(own.labels.tolist()) == {0}
        assert self.overlapping_pairs_of_a_class(own) == 0
        model = SniperTestTimeAug(module=detector)
        with model.view_settings():
            view = self.predict(model.module, image)
        assert 100 < len(view) <= VIEW_TEST_CFG['max_per_img']
        # Above the 1e-3 floor (class 1), not below it (class 2), and no NMS within a class.
        assert set(view.labels.tolist()) == {0, 1} and (view.scores > 1e-3).all()
        assert self.overlapping_pairs_of_a_class(view) > 0
        # The final cap is the merge's.
        assert model.tta_cfg.max_per_img == 100
        # Outside the test-time model's calls the detector predicts under its own limits again.
        again = self.predict(detector, image)
        assert torch.equal(again.bboxes, own.bboxes) and torch.equal(again.scores, own.scores)


def known_objects(rng, width, height):
    """Hand-placed objects across tile borders (tiles of 256 px at a stride of 191 px: borders at 191, 256,
    382, 447, ...), at a four-tile corner and on the image edges, and random objects on a 100 px grid, all
    at most 60 px wide and high (the default overlap holds them whole) and apart from each other. Whole
    original pixels."""
    objects = [[230, 20, 290, 60], [225, 225, 280, 280], [160, 600, 215, 650], [0, 500, 40, 560],
               [width - 50, height - 45, width, height], [420, 0, 470, 60], [1230, 240, 1290, 290],
               [375, 440, 395, 455]]
    # 60 px sides swept pixel by pixel across the borders 382 and 447: each is lost if the overlap is
    # short of the rule by even a few pixels.
    objects += [[u, 700 + 15 * i, u + 60, 712 + 15 * i] for i, u in enumerate(range(378, 395))]
    objects += [[20 + 15 * i, u, 32 + 15 * i, u + 60] for i, u in enumerate(range(378, 395))]
    for cx in range(550, width - 60, 100):
        for cy in range(350, height - 60, 100):
            w, h = rng.integers(6, 31, 2) * 2
            x, y = cx + rng.integers(0, 100 - w), cy + rng.integers(0, 100 - h)
            objects.append([x, y, x + w, y + h])
    return np.array(objects, dtype=np.float64)


class TestSliced:

    # Default overlaps 60 + 5 and 30 + 5 px: 8 x 6 tiles of the 1500 x 1100 view, 4 x 3 of the 750 x 550 one.
    @pytest.mark.parametrize('scales, tiles, tiles_per_batch', [
        ((1.0,), 48, 5), ((0.5,), 12, 8), ((1.0, 0.5), 60, 5), ((1.0, 0.5), 60, 8)])
    def test_each_object_once_at_its_place(self, rng, scales, tiles, tiles_per_batch):
        width, height = 1500, 1100
        objects = known_objects(rng, width, height)
        labels = rng.integers(0, 3, len(objects))
        views = [encoded_view(objects, width, height, scale, scale != 1, (-1, 60), view_index)
                 for view_index, scale in enumerate(scales)]
        detector = KnownObjectsDetector([boxes for _, _, boxes in views], labels)
        model = tta(NMS, max_per_img=1000, module=detector, sliced=True, chip_size=256,
                    tiles_per_batch=tiles_per_batch)

        (result,) = model.test_step(dict(inputs=[[image] for image, _, _ in views],
                                         data_samples=[[sample] for _, sample, _ in views]))

        assert sum(detector.batch_sizes) == tiles
        assert max(detector.batch_sizes) == tiles_per_batch
        assert len(detector.batch_sizes) == math.ceil(tiles / tiles_per_batch)
        self.assert_found_once(result, objects, labels)

    def test_view_smaller_than_a_chip_is_one_tile(self):
        width, height = 200, 150
        objects = np.array([[0, 0, 30, 40], [170, 120, 200, 150], [90, 60, 130, 110]], dtype=np.float64)
        labels = np.array([0, 1, 2])
        image, sample, boxes = encoded_view(objects, width, height, 1.0, True, (-1, -1))
        detector = KnownObjectsDetector([boxes], labels)
        model = tta(NMS, module=detector, sliced=True, chip_size=256)

        (result,) = model.test_step(dict(inputs=[[image]], data_samples=[[sample]]))

        assert detector.batch_sizes == [1]
        self.assert_found_once(result, objects, labels)

    @staticmethod
    def assert_found_once(result, objects, labels):
        pred = result.pred_instances
        assert len(pred) == len(objects)
        order = np.lexsort(pred.bboxes.numpy().T[::-1])
        expected = np.lexsort(objects.T[::-1])
        np.testing.assert_allclose(pred.bboxes.numpy()[order], objects[expected], rtol=0, atol=1e-4)
        np.testing.assert_array_equal(pred.labels.numpy()[order], labels[expected])
        np.testing.assert_allclose(pred.scores.numpy(), 0.9, rtol=0, atol=1e-6)


class TestViewCap:

    @pytest.mark.parametrize('cap, kept', [(2, [0.9, 0.7]), (4, [0.2, 0.9, 0.4, 0.7]), (None, [0.2, 0.9, 0.4, 0.7])])
    def test_a_view_from_windows_keeps_the_cap_of_a_whole_view(self, cap, kept):
        module = NoDetector()
        module.roi_head = torch.nn.Module()
        module.roi_head.test_cfg = ConfigDict(score_thr=1e-3, nms=None, max_per_img=cap)
        model = tta(NMS, module=module)
        predictions = InstanceData(bboxes=torch.arange(16.).reshape(4, 4), scores=torch.tensor([0.2, 0.9, 0.4, 0.7]),
                                   labels=torch.zeros(4, dtype=torch.long))
        result = model.keep_view_cap(predictions)
        assert result.scores.tolist() == pytest.approx(kept)
        rows = {tuple(box) for box in result.bboxes.tolist()}
        assert rows == {tuple(box) for box, s in zip(predictions.bboxes.tolist(), predictions.scores.tolist())
                        if s in result.scores.tolist()}
