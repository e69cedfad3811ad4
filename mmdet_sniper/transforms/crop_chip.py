"""CropChip: cut one SNIPER chip out of the original image and bring its boxes into chip pixels."""

from typing import Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes

from mmdet_sniper.ops import clip_boxes_to_chips

_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic')

# Chip pixels a box may lose to the chip border and still count as whole: taking the chip at the
# nearest output pixel moves its origin by up to half a pixel, which can shave that much off a box
# the chip generator found inside the chip.
CUT_TOLERANCE = 1.0


@TRANSFORMS.register_module()
class CropChip(BaseTransform):
    """Crops a chip from the original image and resizes only the crop, so the cost follows the chip's
    pixels, not those of the whole image at the chip's scale (9x the image area at COCO's finest).

    ``cv2.resize`` (what mmdet's ``Resize`` uses, half-pixel centres, border replicated) scales the
    source pixels under the chip, with a margin for the interpolation's neighbours. Its output grid
    starts at a whole source pixel, so the chip is taken at the output pixel nearest to ``(x1,
    y1)``: the chip's origin moves by at most half a scaled pixel, and the chip pixel ``(u, v)`` is
    the pixel ``(x1' + u, y1' + v)`` of the whole image resized by ``(sx, sy)``. Boxes are placed
    relative to that origin, which ``homography_matrix`` records, so boxes and pixels agree
    exactly. (``cv2.warpAffine`` could sample at ``(x1, y1)`` itself but costs 6x more per pixel.)
    A chip that the scaled image does not fill (an image smaller than a chip) is not padded here,
    never stretched: ``img_shape`` is the crop's shape, and the detector's data preprocessor pads the
    batch after normalisation, i.e. with the mean colour, as the authors pad their chips and as the
    multi-scale test pads its views.

    Boxes are scaled, clipped to the scaled image and then to the chip (``clip_boxes_to_chips``), in
    chip pixels. A box overlapping the chip is a target (``gt_ignore_flags`` False) if it is valid at
    the chip's scale (``chip_instance_valid``), not already ignored (crowd), whole in the chip (it
    loses at most ``CUT_TOLERANCE`` pixels of width and height to the chip border; the image border
    does not count), and at least ``min_target_size`` pixels wide and high. Every other box
    overlapping the chip becomes an ignore region (``gt_ignore_flags`` True, ``ignored_instances``
    after ``PackDetInputs``), so that anchors on it are neither positives nor negatives: a box cut by
    the chip is learnt whole in the chip that holds it (the chip generator puts every valid box whole
    in a chip, and reports those it cannot), never as a truncated box. Boxes outside the chip are
    dropped from this chip only; other chips of the image hold them. See docs/chip_generation.md,
    "Targets in a chip".

    Required keys: ``img``, ``chip``, ``chip_scale_factor``, ``chip_size``, and with boxes
    ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``, ``chip_instance_valid`` (all from
    :class:`SniperDataset` and ``LoadAnnotations``). Modified keys: ``img``, ``img_shape``, the box
    keys. Added keys: ``scale_factor``, ``homography_matrix``.

    Args:
        min_target_size: the smallest width and height, in chip pixels, of a target's visible part
            (SNIPER: 10).
        interpolation: ``'nearest'``, ``'bilinear'`` (mmdet's default) or ``'bicubic'``.
    """

    def __init__(self, min_target_size: float = 10.0, interpolation: str = 'bilinear'):
        if min_target_size < 0:
            raise ValueError(f'min_target_size must be >= 0 (chip pixels), got {min_target_size}')
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}')
        self.min_target_size = min_target_size
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        for key in ('gt_masks', 'gt_seg_map'):
            if results.get(key) is not None:
                raise NotImplementedError(f'CropChip crops images and boxes; it cannot crop {key} yet')
        img = results['img']
        chip = np.asarray(results['chip'], dtype=np.float64)
        sx, sy = (float(v) for v in results['chip_scale_factor'])
        chip_size = int(results['chip_size'])
        height, width = img.shape[:2]
        scaled_w, scaled_h = int(round(width * sx)), int(round(height * sy))
        x1, y1, x2, y2 = chip.tolist()
        crop_w, crop_h = int(round(x2 - x1)), int(round(y2 - y1))
        if not (0 <= x1 and 0 <= y1 and x1 + crop_w <= scaled_w and y1 + crop_h <= scaled_h
                and 1 <= crop_w <= chip_size and 1 <= crop_h <= chip_size):
            raise ValueError(f'chip {chip.tolist()} of image {results.get("img_path")} must lie inside the image '
                             f'scaled by ({sx:.6g}, {sy:.6g}) to {scaled_w}x{scaled_h} px and be 1..{chip_size} px '
                             f'(chip_size) wide and high')
        crop, (x1, y1) = self._crop(img, x1, y1, sx, sy, crop_w, crop_h)
        results['img'] = crop
        results['img_shape'] = (crop_h, crop_w)
        results['scale_factor'] = (sx, sy)
        to_chip = np.array([[sx, 0, -x1], [0, sy, -y1], [0, 0, 1]], dtype=np.float32)
        previous = results.get('homography_matrix')
        results['homography_matrix'] = to_chip if previous is None else to_chip @ previous
        if results.get('gt_bboxes') is not None:
            self._crop_boxes(results, np.array([x1, y1, x1 + crop_w, y1 + crop_h], np.float32), sx, sy,
                             scaled_w, scaled_h)
        return results

    def _crop(self, img: np.ndarray, x1: float, y1: float, sx: float, sy: float, crop_w: int,
              crop_h: int) -> Tuple[np.ndarray, Tuple[float, float]]:
        """The ``crop_w x crop_h`` scaled pixels nearest to the chip, and their origin in the scaled
        image."""
        import cv2
        interpolation = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR,
                         'bicubic': cv2.INTER_CUBIC}[self.interpolation]
        origin, axes = [], []
        for start, size, factor, limit in ((x1, crop_w, sx, img.shape[1]), (y1, crop_h, sy, img.shape[0])):
            # Enough source pixels around the chip for the kernel (bicubic reads 2 either side) and
            # for rounding the origin by up to half a scaled pixel.
            margin = 3 + int(np.ceil(0.5 / factor))
            last_first = max(int(np.floor((start + 0.5) / factor - 0.5)) - margin, 0)
            # Of a few window starts, the one whose grid falls closest to the chip: exactly on it
            # for whole-number ratios such as 1.5 or 3.
            first = min(range(max(last_first - 3, 0), last_first + 1),
                        key=lambda f: abs(start - f * factor - round(start - f * factor)))
            stop = min(int(np.ceil((start + size + 0.5) / factor - 0.5)) + margin, limit)
            offset = int(round(start - first * factor))  # the chip's first output pixel
            origin.append(first * factor + offset)
            axes.append((first, stop, offset))
        (x_first, x_stop, x_off), (y_first, y_stop, y_off) = axes
        # With fx, fy given, cv2.resize maps output pixel j to source (j + 0.5) / f - 0.5, exactly as
        # the whole image's resize does, shifted by the source window's first pixel.
        resized = cv2.resize(img[y_first:y_stop, x_first:x_stop], None, fx=sx, fy=sy, interpolation=interpolation)
        resized = resized.reshape(resized.shape[:2] + img.shape[2:])
        crop = resized[y_off:y_off + crop_h, x_off:x_off + crop_w]
        if crop.shape[:2] != (crop_h, crop_w):
            # At the far image border the window's resize may end a pixel short: replicate the edge,
            # as the whole image's resize does.
            pad = [(0, crop_h - crop.shape[0]), (0, crop_w - crop.shape[1])] + [(0, 0)] * (img.ndim - 2)
            crop = np.pad(crop, pad, mode='edge')
        return crop, (origin[0], origin[1])

    def _crop_boxes(self, results: dict, chip: np.ndarray, sx: float, sy: float, scaled_w: int,
                    scaled_h: int) -> None:
        boxes = results['gt_bboxes']
        tensor = boxes.tensor if isinstance(boxes, BaseBoxes) else torch.as_tensor(np.asarray(boxes))
        tensor = tensor.float().reshape(-1, 4)
        valid = np.asarray(results['chip_instance_valid'], dtype=bool)
        ignored = np.asarray(results['gt_ignore_flags'], dtype=bool)
        if not len(valid) == len(ignored) == len(tensor):
            raise ValueError(f'image {results.get("img_path")}: chip_instance_valid ({len(valid)}), gt_ignore_flags '
                             f'({len(ignored)}) and gt_bboxes ({len(tensor)}) must hold one entry per box; put '
                             'CropChip right after LoadAnnotations')
        limits = torch.tensor([scaled_w, scaled_h, scaled_w, scaled_h], dtype=torch.float32)
        scaled = torch.minimum((tensor * torch.tensor([sx, sy, sx, sy])).clamp(min=0), limits)
        clipped = clip_boxes_to_chips(scaled[None], torch.from_numpy(chip)[None, None])[0][0, 0]
        w, h = (clipped[:, 2] - clipped[:, 0]).numpy(), (clipped[:, 3] - clipped[:, 1]).numpy()
        whole_w, whole_h = (scaled[:, 2] - scaled[:, 0]).numpy(), (scaled[:, 3] - scaled[:, 1]).numpy()
        inside = (w > 0) & (h > 0)
        whole = (w >= whole_w - CUT_TOLERANCE) & (h >= whole_h - CUT_TOLERANCE)
        target = inside & whole & valid & ~ignored & (w >= self.min_target_size) & (h >= self.min_target_size)
        kept = clipped[torch.from_numpy(inside)]
        results['gt_bboxes'] = type(boxes)(kept) if isinstance(boxes, BaseBoxes) else kept.numpy()
        results['gt_bboxes_labels'] = np.asarray(results['gt_bboxes_labels'])[inside]
        results['gt_ignore_flags'] = ~target[inside]

    def __repr__(self) -> str:
        return f'{type(self).__name__}(min_target_size={self.min_target_size}, interpolation={self.interpolation!r})'
