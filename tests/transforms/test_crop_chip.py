import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

import mmdet_sniper  # noqa: F401  (registers CropChip)
from mmdet_sniper.transforms import CropChip


def smooth_image(rng, height, width, channels=3):
    """Low-frequency content, so that sampling positions matter more than cv2's fixed-point rounding."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, channels))
    for c in range(channels):
        fx, fy, phase = rng.uniform(0.01, 0.08), rng.uniform(0.01, 0.08), rng.uniform(0, 6.3)
        image[..., c] = 127.5 + 100 * np.sin(fx * xx + phase) * np.cos(fy * yy)
    return np.round(image).astype(np.uint8)


def reference_crop(image, chip, sx, sy, interpolation='bilinear'):
    """Samples of the original image at the chip's pixel centres, border replicated."""
    x1, y1, x2, y2 = chip
    u, v = np.arange(int(round(x2 - x1))), np.arange(int(round(y2 - y1)))
    src_x, src_y = (x1 + u + 0.5) / sx - 0.5, (y1 + v + 0.5) / sy - 0.5
    h, w = image.shape[:2]
    if interpolation == 'nearest':  # cv2's nearest: floor of the pixel's left/top edge position
        xs = np.clip(np.floor((x1 + u) / sx + 1e-9).astype(int), 0, w - 1)
        ys = np.clip(np.floor((y1 + v) / sy + 1e-9).astype(int), 0, h - 1)
        return image[ys][:, xs].astype(np.float64)
    x0, y0 = np.floor(src_x).astype(int), np.floor(src_y).astype(int)
    ax, ay = (src_x - x0)[None, :, None], (src_y - y0)[:, None, None]
    xa, xb = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    ya, yb = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    img = image.astype(np.float64)
    top = img[ya][:, xa] * (1 - ax) + img[ya][:, xb] * ax
    bottom = img[yb][:, xa] * (1 - ax) + img[yb][:, xb] * ax
    return top * (1 - ay) + bottom * ay


def random_chip(rng, width, height, scale, chip_size):
    """A chip of the image at ``scale`` as the generator makes them: integer corners, inside the
    scaled image, at most chip_size wide and high."""
    scaled_w, scaled_h = int(np.floor(width * scale + 0.5)), int(np.floor(height * scale + 0.5))
    sx, sy = np.float32(scaled_w / width), np.float32(scaled_h / height)
    cw, ch = min(chip_size, scaled_w), min(chip_size, scaled_h)
    x1, y1 = int(rng.integers(0, scaled_w - cw + 1)), int(rng.integers(0, scaled_h - ch + 1))
    return np.array([x1, y1, x1 + cw, y1 + ch], np.float32), (sx, sy), (scaled_w, scaled_h)


def chip_results(img, chip, factors, chip_size, boxes=None, valid=None, ignore=None, labels=None):
    # img_id: every mmdet dataset's data info has one, and mmdet 3.0's PackDetInputs asks for it.
    results = dict(img=img, img_id=0, img_shape=img.shape[:2], ori_shape=img.shape[:2], img_path='synthetic.jpg',
                   chip=chip, chip_scale_factor=np.array(factors, np.float32), chip_size=chip_size)
    if boxes is not None:
        n = len(boxes)
        results.update(gt_bboxes=HorizontalBoxes(torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4))),
                       gt_bboxes_labels=np.arange(n) if labels is None else labels,
                       gt_ignore_flags=np.zeros(n, bool) if ignore is None else ignore,
                       chip_instance_valid=np.ones(n, bool) if valid is None else valid)
    return results


def taken_chip(out, chip):
    """The chip as taken: its origin, from the homography, within half a scaled pixel of the chip's."""
    x1, y1 = -out['homography_matrix'][0, 2], -out['homography_matrix'][1, 2]
    assert abs(x1 - chip[0]) <= 0.5 + 1e-4 and abs(y1 - chip[1]) <= 0.5 + 1e-4
    return np.array([x1, y1, x1 + chip[2] - chip[0], y1 + chip[3] - chip[1]], np.float64)


@pytest.mark.parametrize('scale', [3.0, 1.667, 0.4, 0.15])
@pytest.mark.parametrize('interpolation', ['bilinear', 'nearest'])
def test_pixels_equal_the_reference_crop_then_resize(rng, scale, interpolation):
    width, height = int(rng.integers(150, 900)), int(rng.integers(150, 900))
    image = smooth_image(rng, height, width)
    chip, (sx, sy), _ = random_chip(rng, width, height, scale, 256)
    out = CropChip(interpolation=interpolation)(chip_results(image, chip, (sx, sy), 256))
    cw, ch = int(chip[2] - chip[0]), int(chip[3] - chip[1])
    got = out['img'][:ch, :cw].astype(np.float64)
    expected = reference_crop(image, taken_chip(out, chip), float(sx), float(sy), interpolation)
    if interpolation == 'nearest':  # a pixel centre exactly between two source pixels may go either way
        assert np.mean(got != expected) < 0.01
    else:  # cv2 computes the weights in fixed point and rounds to integers: a level or two here
        assert np.abs(got - expected).max() <= 2.0
        assert np.abs(got - expected).mean() < 0.6


@pytest.mark.parametrize('scale', [2.0, 3.0])
def test_at_whole_scales_the_chip_is_a_crop_of_mmdets_resize_of_the_whole_image(rng, scale):
    from mmdet.datasets.transforms import Resize
    width, height = int(rng.integers(100, 300)), int(rng.integers(100, 300))
    image = (rng.uniform(size=(height, width, 3)) * 255).astype(np.uint8)  # any content: exact positions
    chip, (sx, sy), (scaled_w, scaled_h) = random_chip(rng, width, height, scale, 256)
    resized = Resize(scale=(scaled_w, scaled_h), keep_ratio=False)(dict(img=image))['img']
    x1, y1, x2, y2 = chip.astype(int)
    out = CropChip()(chip_results(image, chip, (sx, sy), 256))
    np.testing.assert_array_equal(taken_chip(out, chip), chip)
    np.testing.assert_array_equal(out['img'][:y2 - y1, :x2 - x1], resized[y1:y2, x1:x2])


def test_an_image_smaller_than_a_chip_is_neither_padded_nor_stretched(rng):
    image = smooth_image(rng, 70, 100)
    chip = np.array([0, 0, 200, 140], np.float32)  # the whole image at scale 2
    out = CropChip()(chip_results(image, chip, (2.0, 2.0), 256, boxes=[[10, 10, 40, 30]]))
    assert out['img'].shape == (140, 200, 3) and out['img_shape'] == (140, 200)
    assert np.abs(out['img'] - reference_crop(image, taken_chip(out, chip), 2.0, 2.0)).max() <= 2
    np.testing.assert_allclose(out['gt_bboxes'].tensor.numpy(), [[20, 20, 80, 60]])
    assert out['scale_factor'] == (2.0, 2.0)


def test_a_small_chip_is_padded_with_the_mean_colour_in_a_batch_of_full_chips(rng):
    # The training pipeline and the data preprocessor of the COCO config, as the runner chains them.
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmengine.dataset import pseudo_collate
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    preprocessor = DetDataPreprocessor(mean=mean, std=std, bgr_to_rgb=True, pad_size_divisor=32)
    # Not flipped, so that the padding stays at the bottom and right; mmdet 3.0's PackDetInputs needs the flag.
    flip, pack = TRANSFORMS.build(dict(type='RandomFlip', prob=0.0)), TRANSFORMS.build(dict(type='PackDetInputs'))
    small_chip = chip_results(smooth_image(rng, 70, 100), np.array([0, 0, 200, 140], np.float32), (2.0, 2.0), 256,
                              boxes=[[10, 10, 40, 30]])
    full_chip = chip_results(smooth_image(rng, 300, 300), np.array([0, 0, 256, 256], np.float32), (1.0, 1.0), 256,
                             boxes=[[10, 10, 40, 30]])
    small, full = (pack(flip(CropChip()(chip))) for chip in (small_chip, full_chip))
    batch = preprocessor(pseudo_collate([small, full]), training=True)['inputs']
    assert batch.shape == (2, 3, 256, 256)
    # Zero after normalisation is the mean colour, as the authors pad (mean subtracted, then zeros).
    assert (batch[0, :, 140:] == 0).all() and (batch[0, :, :, 200:] == 0).all()
    rgb = small['inputs'].flip(0).float()
    expected = (rgb - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(batch[0, :, :140, :200], expected)


def direct_boxes(boxes, chip, sx, sy, scaled_w, scaled_h, valid, ignore, min_size):
    """Box by box: scale, clip to the scaled image and to the chip, in chip coordinates."""
    kept, flags, rows = [], [], []
    for i, (bx1, by1, bx2, by2) in enumerate(boxes):
        sb = [min(max(bx1 * sx, 0), scaled_w), min(max(by1 * sy, 0), scaled_h),
              min(max(bx2 * sx, 0), scaled_w), min(max(by2 * sy, 0), scaled_h)]
        cx1, cy1 = max(sb[0], chip[0]) - chip[0], max(sb[1], chip[1]) - chip[1]
        cx2, cy2 = min(sb[2], chip[2]) - chip[0], min(sb[3], chip[3]) - chip[1]
        w, h = cx2 - cx1, cy2 - cy1
        if w > 0 and h > 0:
            kept.append([cx1, cy1, cx2, cy2])
            whole = w >= sb[2] - sb[0] - 1 and h >= sb[3] - sb[1] - 1
            flags.append(not (valid[i] and not ignore[i] and whole and w >= min_size and h >= min_size))
            rows.append(i)
    return np.array(kept, np.float64).reshape(-1, 4), np.array(flags, bool), rows


def test_boxes_in_chip_coordinates_match_a_direct_computation(rng):
    for _ in range(20):
        width, height = int(rng.integers(100, 600)), int(rng.integers(100, 600))
        scale = float(rng.choice([3.0, 1.667, 0.6]))
        chip, (sx, sy), (scaled_w, scaled_h) = random_chip(rng, width, height, scale, 256)
        n = int(rng.integers(0, 30))
        xy = rng.uniform(-30, [width + 30, height + 30], (n, 2))
        wh = rng.uniform(0, 150, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        valid, ignore = rng.uniform(size=n) < 0.7, rng.uniform(size=n) < 0.2
        labels = rng.integers(0, 5, n)
        min_size = float(rng.choice([0.0, 10.0]))
        out = CropChip(min_target_size=min_size)(chip_results(np.zeros((height, width, 3), np.uint8), chip, (sx, sy),
                                                              256, boxes, valid, ignore, labels))
        expected, flags, rows = direct_boxes(boxes.astype(np.float64), taken_chip(out, chip), float(sx), float(sy),
                                             scaled_w, scaled_h, valid, ignore, min_size)
        np.testing.assert_allclose(out['gt_bboxes'].tensor.numpy(), expected, atol=1e-3)
        np.testing.assert_array_equal(out['gt_ignore_flags'], flags)
        np.testing.assert_array_equal(out['gt_bboxes_labels'], labels[rows])


def test_invalid_crowd_and_cut_boxes_become_ignore_regions():
    chip = np.array([100, 100, 356, 356], np.float32)  # at scale 1: original pixels = chip pixels + 100
    boxes = [[150, 150, 200, 200],  # valid, inside: target
             [160, 160, 190, 190],  # out of the scale's range: ignored
             [200, 200, 250, 260],  # crowd: ignored
             [350, 150, 400, 200],  # valid but cut to 6 px wide: ignored
             [340, 150, 400, 200],  # valid, cut to 16 of 60 px wide: ignored, not a truncated target
             [300, 90, 340, 150],  # valid, 50 of 60 px high inside, still 40 x 50 px: ignored
             [300, 99.5, 355.5, 150],  # valid, loses half a pixel to the chip border: whole, a target
             [0, 300, 120, 356],  # valid, cut by the chip's left edge at the image's bottom: ignored
             [150, 300, 200, 380],  # valid, beyond the image's bottom, whole in the chip: a target
             [400, 400, 420, 420]]  # outside the chip: not in this chip
    valid = np.ones(len(boxes), bool)
    valid[1] = False
    ignore = np.zeros(len(boxes), bool)
    ignore[2] = True
    out = CropChip()(chip_results(np.zeros((356, 500, 3), np.uint8), chip, (1.0, 1.0), 256, boxes, valid, ignore))
    np.testing.assert_array_equal(out['gt_bboxes_labels'], [0, 1, 2, 3, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(out['gt_ignore_flags'], [False, True, True, True, True, True, False, True, False])
    np.testing.assert_allclose(out['gt_bboxes'].tensor.numpy()[[3, 4, 5, 6, 8]],
                               [[250, 50, 256, 100], [240, 50, 256, 100], [200, 0, 240, 50], [200, 0, 255.5, 50],
                                [50, 200, 100, 256]])


def test_a_box_held_whole_by_two_overlapping_chips_is_a_target_in_both():
    boxes = [[200, 50, 240, 90]]
    for chip in ([0, 0, 256, 256], [100, 0, 356, 256]):
        out = CropChip()(chip_results(np.zeros((300, 400, 3), np.uint8), np.array(chip, np.float32), (1.0, 1.0), 256,
                                      boxes))
        np.testing.assert_array_equal(out['gt_ignore_flags'], [False])


def test_composes_with_random_flip_and_pack_det_inputs(rng):
    image = smooth_image(rng, 100, 150)
    chip = np.array([0, 0, 300, 200], np.float32)  # the whole image at scale 2, in a 320 px chip
    boxes = [[10, 10, 60, 50], [100, 20, 104, 90]]  # the second is 8 px wide at scale 2: ignored
    pipeline = Compose([CropChip(), TRANSFORMS.build(dict(type='RandomFlip', prob=1.0)),
                        TRANSFORMS.build(dict(type='PackDetInputs', meta_keys=('img_shape', 'scale_factor', 'flip')))])
    plain = CropChip()(chip_results(image, chip, (2.0, 2.0), 320, boxes))
    out = pipeline(chip_results(image, chip, (2.0, 2.0), 320, boxes))
    flipped = out['inputs'].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(flipped, plain['img'][:, ::-1])
    sample = out['data_samples']
    assert sample.img_shape == (200, 300) and sample.flip
    np.testing.assert_allclose(sample.gt_instances.bboxes.tensor.numpy(), [[300 - 120, 20, 300 - 20, 100]])
    np.testing.assert_allclose(sample.ignored_instances.bboxes.tensor.numpy(), [[300 - 208, 40, 300 - 200, 180]])
    # The flipped box still frames the same pixels.
    x1, y1, x2, y2 = sample.gt_instances.bboxes.tensor.numpy()[0].astype(int)
    np.testing.assert_array_equal(flipped[y1:y2, x1:x2], plain['img'][20:100, 20:120][:, ::-1])


def test_homography_maps_original_pixels_to_chip_pixels():
    chip = np.array([30, 40, 286, 296], np.float32)
    out = CropChip()(chip_results(np.zeros((200, 200, 3), np.uint8), chip, (1.5, 2.0), 256))
    point = out['homography_matrix'] @ np.array([100.0, 50.0, 1.0])
    np.testing.assert_allclose(point[:2], [100 * 1.5 - 30, 50 * 2.0 - 40])


def test_an_image_without_boxes_gives_an_empty_background_chip():
    out = CropChip()(chip_results(np.zeros((300, 300, 3), np.uint8), np.array([0, 0, 256, 256], np.float32),
                                  (1.0, 1.0), 256, boxes=np.zeros((0, 4))))
    assert out['gt_bboxes'].tensor.shape == (0, 4) and out['gt_ignore_flags'].shape == (0,)


@pytest.mark.parametrize('chip', [[300, 0, 556, 256], [-1, 0, 255, 256], [0, 0, 300, 300]])
def test_a_chip_outside_its_image_is_a_clear_error(chip):
    results = chip_results(np.zeros((400, 400, 3), np.uint8), np.array(chip, np.float32), (1.0, 1.0), 256)
    with pytest.raises(ValueError, match=r'synthetic\.jpg must lie inside the image scaled .* to 400x400'):
        CropChip()(results)


def test_bad_input_is_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match='min_target_size'):
        CropChip(min_target_size=-1)
    with pytest.raises(ValueError, match='interpolation'):
        CropChip(interpolation='area')
    results = chip_results(np.zeros((300, 300, 3), np.uint8), np.array([0, 0, 256, 256], np.float32), (1.0, 1.0),
                           256, boxes=[[0, 0, 10, 10]])
    results['chip_instance_valid'] = np.ones(2, bool)
    with pytest.raises(ValueError, match='chip_instance_valid'):
        CropChip()(results)
    results = chip_results(np.zeros((300, 300, 3), np.uint8), np.array([0, 0, 256, 256], np.float32), (1.0, 1.0), 256)
    results['gt_masks'] = object()
    with pytest.raises(NotImplementedError, match='gt_masks'):
        CropChip()(results)
