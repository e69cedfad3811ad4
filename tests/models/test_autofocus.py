"""AutoFocus: FocusPixel labels against a hand-worked grid and a cell-by-cell overlap reference,
FocusChips against known masks and the authors' contour-based gmask, the branch's loss, and the
coarse-to-fine test with a fake detector that sees known objects: every object found once, as by
SNIPER's full test, on fewer pixels."""
import math

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.structures import InstanceData

from mmdet_sniper.models.autofocus_tta import AutoFocusTestTimeAug
from mmdet_sniper.models.focus_chips import focus_chips
from mmdet_sniper.models.focus_pixel_head import FocusPixelHead, focus_pixel_labels
from mmdet_sniper.models.sniper_tta import SniperTestTimeAug
from mmdet_sniper.testing.known_objects import KnownObjectsDetector
from mmdet_sniper.testing.positions import encoded_view

register_all_modules()

SIZES = dict(min_size=2, small_size=20, ignore_size=28)
NMS = dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=1000)


class TestFocusPixelLabels:

    def test_hand_worked_grid(self):
        boxes = torch.tensor([
            [3, 3, 13, 11],     # side 8.9: focus, cells x 0..1, y 0..1
            [24, 0, 48, 24],    # side 24: ignore, x 3..5 (cut at 4), y 0..2
            [30, 10, 38, 18],   # side 8: focus over the ignore cells x 3..4, y 1..2
            [0, 24, 40, 56],    # side 35.8: marks nothing
            [16, 25, 17, 26],   # side 1: ignore, x 2, y 3
            [8, 8, 16, 16],     # on cell borders: the one cell x 1, y 1
            [10, 10, 10, 20],   # no area
            [float('nan'), 0, 8, 8],
        ], dtype=torch.float32)
        expected = torch.tensor([[1, 1, 0, -1, -1],
                                 [1, 1, 0, 1, 1],
                                 [0, 0, 0, 1, 1],
                                 [0, 0, -1, 0, 0]])
        labels = focus_pixel_labels(boxes, (4, 5), 8, **SIZES)
        assert labels.dtype == torch.long
        torch.testing.assert_close(labels, expected)

    @staticmethod
    def reference(boxes, height, width, stride, min_size, small_size, ignore_size):
        """Cell by cell: focus if a small box overlaps it, else ignore if an ignored-size box does."""
        labels = np.zeros((height, width), dtype=np.int64)
        for y in range(height):
            for x in range(width):
                kinds = set()
                for x1, y1, x2, y2 in boxes.tolist():
                    w, h = max(x2 - x1, 0), max(y2 - y1, 0)
                    overlaps = x1 < (x + 1) * stride and x2 > x * stride and y1 < (y + 1) * stride and y2 > y * stride
                    if not (w > 0 and h > 0 and overlaps):
                        continue
                    side = math.sqrt(w * h)
                    if min_size < side < small_size:
                        kinds.add(1)
                    elif side <= min_size or side < ignore_size:
                        kinds.add(-1)
                labels[y, x] = 1 if 1 in kinds else (-1 if -1 in kinds else 0)
        return labels

    @pytest.mark.parametrize('stride', [4, 8, 16])
    def test_random_boxes_against_reference(self, rng, stride):
        for _ in range(5):
            n = int(rng.integers(0, 25))
            xy = rng.uniform(-20, 140, (n, 2))
            wh = rng.uniform(0, 40, (n, 2)) * (rng.random((n, 1)) > 0.1)
            boxes = torch.from_numpy(np.concatenate([xy, xy + wh], 1).astype(np.float32))
            height, width = (int(v) for v in rng.integers(1, 130 // stride + 2, 2))
            labels = focus_pixel_labels(boxes, (height, width), stride, **SIZES)
            np.testing.assert_array_equal(labels.numpy(), self.reference(boxes, height, width, stride, **SIZES))

    def test_no_boxes_is_background(self):
        torch.testing.assert_close(focus_pixel_labels(torch.zeros((0, 4)), (3, 2), 8), torch.zeros((3, 2)).long())

    @pytest.mark.parametrize('kwargs, match', [
        (dict(stride=0), 'stride'), (dict(stride=8.0), 'stride'),
        (dict(min_size=20, small_size=20), 'min_size < small_size'),
        (dict(small_size=30, ignore_size=20), 'small_size <= ignore_size'),
        (dict(min_size=-1), '0 <= min_size')])
    def test_bad_arguments(self, kwargs, match):
        args = dict(stride=8, **SIZES)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            focus_pixel_labels(torch.zeros((0, 4)), (2, 2), **args)

    def test_bad_boxes(self):
        with pytest.raises(ValueError, match='bboxes'):
            focus_pixel_labels(torch.zeros((3, 5)), (2, 2), 8)


class TestFocusPixelHead:

    def test_loss_is_cross_entropy_over_the_cells_not_ignored(self):
        torch.manual_seed(0)
        head = FocusPixelHead(in_channels=4, feat_channels=8, level=1, stride=8, **SIZES)
        feats = (torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 5))
        samples = []
        for boxes, ignored in (([[3, 3, 13, 11]], [[24, 0, 48, 24]]), ([], [])):
            sample = DetDataSample()
            sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
            sample.ignored_instances = InstanceData(bboxes=torch.tensor(ignored, dtype=torch.float32).reshape(-1, 4))
            samples.append(sample)
        loss = head.loss(feats, samples)['loss_focus']

        logits = head(feats)
        labels = torch.stack([focus_pixel_labels(torch.tensor([[3, 3, 13, 11], [24, 0, 48, 24.]]), (4, 5), 8, **SIZES),
                              torch.zeros((4, 5), dtype=torch.long)])
        probs = logits.sigmoid()
        terms = [-math.log(p if t == 1 else 1 - p) for p, t in zip(probs.flatten().tolist(), labels.flatten().tolist())
                 if t != -1]
        assert len(terms) == 40 - 6
        assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
        loss.backward()
        assert head.convs[0].weight.grad.abs().sum() > 0

    def test_all_ignored_gives_zero_loss_with_a_graph(self):
        head = FocusPixelHead(in_channels=4, feat_channels=8, level=0, stride=8, **SIZES)
        sample = DetDataSample()
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[0, 0, 20, 25.]]))
        loss = head.loss((torch.randn(1, 4, 2, 2),), [sample])['loss_focus']
        assert loss.item() == 0 and loss.requires_grad

    @pytest.mark.parametrize('kwargs, match', [(dict(level=-1), 'level'), (dict(in_channels=0), 'in_channels'),
                                               (dict(loss_weight=-1), 'loss_weight'), (dict(stride=3.5), 'stride'),
                                               (dict(small_size=1), 'min_size < small_size')])
    def test_bad_arguments(self, kwargs, match):
        args = dict(in_channels=4, level=0, stride=8)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            FocusPixelHead(**args)

    def test_level_beyond_the_neck(self):
        with pytest.raises(ValueError, match='level 2'):
            FocusPixelHead(in_channels=4, level=2, stride=8)((torch.zeros(1, 4, 2, 2),))


def authors_gmask_cells(mask, d, thresh, ms):
    """The authors' gmask (lib/chips/chips_inference.py) up to its chips in cells, in Python 3 (their
    ``/`` on ints is ``//``) and OpenCV 4's findContours, with one deliberate difference
    (docs/autofocus.md): the outer contours of the groups only (``RETR_EXTERNAL``), where their
    ``RETR_LIST`` also lists each hole of a group as a chip of its own."""
    mask = mask.copy()
    ih, iw = mask.shape
    binary = (mask >= thresh).astype(np.uint8)
    mask = cv2.dilate(binary, np.ones((d, d), np.uint8)) * 255 if d > 1 else binary * 255

    def rects(cnts):
        out = []
        for cnt in cnts:
            x, y, w, h = cv2.boundingRect(cnt)
            cx, cy = (x + x + w) // 2, (y + y + h) // 2
            w, h = max(ms, w), max(ms, h)
            x = (iw - w if iw - w >= 0 else 0) if cx + w // 2 >= iw else (0 if cx - w // 2 < 0 else cx - w // 2)
            y = (ih - h if ih - h >= 0 else 0) if cy + h // 2 >= ih else (0 if cy - h // 2 < 0 else cy - h // 2)
            out.append((x, y, x + w, y + h))
        return out

    cnts, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    chips, nchips = [], -1
    while nchips != len(chips):
        nchips = len(chips)
        for x1, y1, x2, y2 in rects(cnts):
            mask[y1:y2, x1:x2] = 255
        cnts, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        chips = rects(cnts)
    # Their chips may reach past the grid; the pixel step then cuts them at the image.
    return sorted((x1, y1, min(x2, iw), min(y2, ih)) for x1, y1, x2, y2 in chips)


class TestFocusChips:

    def test_known_masks(self):
        focus = np.zeros((10, 12))
        focus[2, 2] = focus[2, 4] = 0.5   # one cell apart: merged by a dilation of 3
        focus[8, 10] = 0.3                # alone
        focus[6, 0] = 0.1                 # under the threshold
        np.testing.assert_array_equal(focus_chips(focus, 0.3, 1, (1, 1)), [[2, 2, 3, 3], [4, 2, 5, 3], [10, 8, 11, 9]])
        np.testing.assert_array_equal(focus_chips(focus, 0.3, 3, (1, 1)), [[1, 1, 6, 4], [9, 7, 12, 10]])
        # Widened to 4 cells about the centre and shifted in from the edges: the first two then
        # overlap and become one.
        np.testing.assert_array_equal(focus_chips(focus, 0.3, 1, (4, 4)), [[0, 0, 6, 4], [8, 6, 12, 10]])

    def test_widening_and_edges(self):
        focus = np.zeros((14, 14))
        focus[0, 0] = focus[7, 7] = focus[13, 13] = 1
        np.testing.assert_array_equal(focus_chips(focus, 0.5, 1, (4, 4)),
                                      [[0, 0, 4, 4], [5, 5, 9, 9], [10, 10, 14, 14]])
        # A minimum beyond the grid is cut at it; the rows then touch and merge but the first.
        focus = np.zeros((10, 10))
        focus[0, 0] = focus[9, 9] = focus[5, 5] = 1
        np.testing.assert_array_equal(focus_chips(focus, 0.5, 1, (20, 3)), [[0, 0, 10, 3], [0, 4, 10, 10]])

    def test_chips_grown_into_each_other_become_one(self):
        focus = np.zeros((10, 10))
        focus[5, 2] = focus[5, 5] = 1     # widened to 4: [0, 4) and [3, 7) overlap
        np.testing.assert_array_equal(focus_chips(focus, 0.5, 1, (4, 4)), [[0, 3, 7, 7]])

    def test_a_group_with_a_hole_is_one_chip(self):
        focus = np.zeros((8, 8))
        focus[1:6, 2:7] = 1
        focus[3, 4] = 0                   # a hole: the authors' RETR_LIST also lists it, a chip [3, 2, 6, 5]
        np.testing.assert_array_equal(focus_chips(focus, 0.5, 1, (1, 1)), [[2, 1, 7, 6]])

    def test_nothing_to_focus_on(self):
        focus = np.full((4, 4), np.nan)
        focus[0, 0] = 0.01
        assert focus_chips(focus, 0.5, 3, (2, 2)).shape == (0, 4)
        assert focus_chips(np.zeros((0, 0)), 0.5, 3, (2, 2)).shape == (0, 4)

    def test_random_maps_against_the_authors(self, rng):
        for _ in range(40):
            height, width = (int(v) for v in rng.integers(4, 40, 2))
            focus = rng.random((height, width)) ** 8
            threshold, dilation = float(rng.choice([0.2, 0.5, 0.9])), int(rng.choice([1, 3, 5]))
            ms = int(rng.integers(1, 12))
            ours = sorted(tuple(chip) for chip in focus_chips(focus, threshold, dilation, (ms, ms)).tolist())
            assert ours == authors_gmask_cells(focus, dilation, threshold, ms)

    @pytest.mark.parametrize('args, match', [((np.zeros(4), 0.5, 3, (1, 1)), 'focus'),
                                             ((np.zeros((2, 2)), 0.5, 3.0, (1, 1)), 'dilation'),
                                             ((np.zeros((2, 2)), 0.5, 3, (0, 1)), 'min_cells'),
                                             ((np.zeros((2, 2)), 0.5, 3, (2,)), 'min_cells')])
    def test_bad_arguments(self, args, match):
        with pytest.raises(ValueError, match=match):
            focus_chips(*args)


def focusing_detector(objects, min_visible=16):
    """Sees the objects from 16 px on and sets the FocusPixels, 8 view pixels each, of the smaller ones."""
    return KnownObjectsDetector(objects, min_visible=min_visible, focus_stride=8)


# An 800 x 600 image at 1/4, 1/2 and 1 (views 0, 1, 2). Seen from 16 px: the 200 px objects at every
# scale, the 60 px ones from 1/2, the 20 px ones at 1 only. Each scale's range keeps its own.
WIDTH, HEIGHT = 800, 600
SCALES = (0.25, 0.5, 1.0)
RANGES = ((100, -1), (40, 100), (-1, 40))
OBJECTS = np.array([[40, 40, 240, 240], [500, 300, 700, 500],     # large
                    [320, 60, 380, 120], [100, 420, 160, 480],   # medium
                    [600, 80, 620, 100], [720, 540, 740, 560],   # small
                    [410, 250, 430, 270]], dtype=np.float64)
FOCUS_CFGS = [dict(threshold=0.5, dilation=3, min_chip_size=64), dict(threshold=0.5, dilation=3, min_chip_size=96)]


def pyramid_views(flip=False, order=(0, 1, 2), first_view=0, ranges=RANGES):
    """Views (image, sample) and each view's objects in its pixels: the scales ``order`` indexes in
    SCALES and ``ranges``, spelt as views ``first_view`` on."""
    views, objects = [], []
    for index in order:
        image, sample, boxes = encoded_view(OBJECTS, WIDTH, HEIGHT, SCALES[index], flip, ranges[index],
                                            first_view + len(views))
        views.append((image, sample))
        objects.append(boxes)
    return views, objects


def batch(views):
    return dict(inputs=[[image] for image, _ in views], data_samples=[[sample] for _, sample in views])


def rows(result):
    pred = result.pred_instances
    return sorted(map(tuple, np.round(pred.bboxes.numpy(), 3).tolist()))


class TestAutoFocusTestTimeAug:

    @pytest.mark.parametrize('order', [(0, 1, 2), (2, 0, 1)])
    def test_every_object_once_on_fewer_pixels(self, order):
        views, objects = pyramid_views(order=order)
        detector = focusing_detector(objects)
        model = AutoFocusTestTimeAug(detector, focus_cfgs=FOCUS_CFGS, tta_cfg=NMS, view_cfg=None, tiles_per_batch=3)

        (result,) = model.test_step(batch(views))

        assert rows(result) == sorted(map(tuple, OBJECTS.tolist()))
        np.testing.assert_allclose(result.pred_instances.scores.numpy(), 0.9)
        # The coarsest view whole, then only chips; the finest's chips hold the small objects whole.
        coarse = order.index(0)
        assert detector.windows[0] == (coarse, 0, 0, 200, 150)
        assert all(view != coarse for view, *_ in detector.windows[1:])
        fine_windows = [window for view, *window in detector.windows if view == order.index(2)]
        for x1, y1, x2, y2 in OBJECTS[4:].tolist():
            assert any(wx1 <= x1 and wy1 <= y1 and x2 <= wx2 and y2 <= wy2 for wx1, wy1, wx2, wy2 in fine_windows)
        for view, x1, y1, x2, y2 in detector.windows[1:]:
            assert x1 % 8 == 0 and y1 % 8 == 0
            assert x2 - x1 >= FOCUS_CFGS[order[view] - 1]['min_chip_size']
        # Each call holds windows of one shape (no padding computed), at most tiles_per_batch.
        assert all(len(set(shapes)) == 1 and len(shapes) <= 3 for shapes in detector.calls)
        processed = sum((x2 - x1) * (y2 - y1) for _, x1, y1, x2, y2 in detector.windows)
        assert result.autofocus_pixels == processed
        assert result.pyramid_pixels == 200 * 150 + 400 * 300 + 800 * 600 > 2 * processed

    def test_same_detections_as_the_full_test(self):
        views, objects = pyramid_views()
        # Each view whole: one tile per view (the fake detector answers in window pixels, as tiles get).
        full = SniperTestTimeAug(focusing_detector(objects), tta_cfg=NMS, view_cfg=None, sliced=True,
                                 chip_size=1024).test_step(batch(views))[0]
        views, objects = pyramid_views()
        focused = AutoFocusTestTimeAug(focusing_detector(objects), focus_cfgs=FOCUS_CFGS, tta_cfg=NMS,
                                       view_cfg=None).test_step(batch(views))[0]
        assert rows(focused) == rows(full) and len(rows(full)) == len(OBJECTS)

    def test_flipped_views_each_their_own_pyramid(self):
        # Two scales, so that the plain and the flipped views are 4 (all encode_positions spells).
        ranges = (None, (40, -1), (-1, 40))
        plain, plain_objects = pyramid_views(order=(1, 2), ranges=ranges)
        flipped, flipped_objects = pyramid_views(flip=True, order=(2, 1), first_view=2, ranges=ranges)
        detector = focusing_detector(plain_objects + flipped_objects)
        model = AutoFocusTestTimeAug(detector, focus_cfgs=FOCUS_CFGS[1:], tta_cfg=NMS, view_cfg=None)

        (result,) = model.test_step(batch(plain + flipped))

        assert rows(result) == sorted(map(tuple, OBJECTS.tolist()))
        # Each flip's coarser view whole, then its finer view in chips.
        whole = [window for window in detector.windows if window[3:] == (400, 300)]
        assert sorted(view for view, *_ in whole) == [0, 3]
        assert {view for view, *_ in detector.windows} == {0, 1, 2, 3}

    def test_no_focus_runs_only_the_coarsest(self):
        views, objects = pyramid_views()
        detector = focusing_detector(objects, min_visible=0)
        model = AutoFocusTestTimeAug(detector, focus_cfgs=FOCUS_CFGS, tta_cfg=NMS, view_cfg=None)
        (result,) = model.test_step(batch(views))
        assert detector.windows == [(0, 0, 0, 200, 150)]
        # Only the coarsest range's objects (sides over 100 px) are kept.
        assert rows(result) == sorted(map(tuple, OBJECTS[:2].tolist()))
        assert result.autofocus_pixels == 200 * 150

    def test_chips_for_by_hand(self):
        views, objects = pyramid_views()
        model = AutoFocusTestTimeAug(focusing_detector(objects), focus_cfgs=FOCUS_CFGS, view_cfg=None)
        focus = torch.zeros((19, 25))    # the 1/4 view: 150 x 200 px in 8 px cells
        focus[3, 3] = 1
        # 1/4 -> 1/2: a cell is 16 px of the finer view; 64 px are 4 cells about cell 3: [1, 5).
        assert model.chips_for(views[0][1], focus, views[1][1], dict(threshold=0.5, dilation=1, min_chip_size=64)) == \
            [(16, 16, 80, 80)]
        # At the far edge the chip is cut at the view and moved back to keep its size.
        focus[:] = 0
        focus[18, 24] = 1
        assert model.chips_for(views[0][1], focus, views[1][1], dict(threshold=0.5, dilation=1, min_chip_size=64)) == \
            [(336, 232, 400, 300)]

    def test_wrong_number_of_scales(self):
        views, objects = pyramid_views()
        model = AutoFocusTestTimeAug(focusing_detector(objects), focus_cfgs=FOCUS_CFGS[:1], view_cfg=None)
        with pytest.raises(ValueError, match='3 scales per flip, but focus_cfgs holds 1'):
            model.test_step(batch(views))

    @pytest.mark.parametrize('kwargs, match', [
        (dict(focus_cfgs=[]), 'one dict per scale'),
        (dict(focus_cfgs=[dict(threshold=0.5, dilation=3)]), r'focus_cfgs\[0\] must hold'),
        (dict(focus_cfgs=[dict(threshold=1.5, dilation=3, min_chip_size=8)]), r'focus_cfgs\[0\].threshold'),
        (dict(focus_cfgs=[dict(threshold=0.5, dilation=0, min_chip_size=8)]), r'focus_cfgs\[0\].dilation'),
        (dict(focus_cfgs=[dict(threshold=0.5, dilation=3, min_chip_size=8.5)]), r'focus_cfgs\[0\].min_chip_size'),
        (dict(edge_margin=-1), 'edge_margin')])
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            AutoFocusTestTimeAug(focusing_detector([]), view_cfg=None, **kwargs)

    def test_detector_without_focus_branch(self):
        detector = focusing_detector([])
        del detector.roi_head.focus_head
        with pytest.raises(ValueError, match='focus_head'):
            AutoFocusTestTimeAug(detector, view_cfg=None)

    def test_takes_the_collated_dict(self):
        views, objects = pyramid_views()
        model = AutoFocusTestTimeAug(focusing_detector(objects), focus_cfgs=FOCUS_CFGS, view_cfg=None)
        with pytest.raises(TypeError, match='pseudo_collate'):
            model.test_step([batch(views)])
