"""CropChip: cut one SNIPER chip out of the original image and bring its boxes into chip pixels."""

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes
from mmdet_sniper.ops import clip_boxes_to_chips

_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic')


@TRANSFORMS.register_module()
class CropChip(BaseTransform):
    """Crops a chip from the original image and resizes only the crop, so the cost follows the chip's
    pixels, not those of the whole image at the chip's scale (3x the image area at COCO's finest).

    The chip pixel ``(u, v)`` samples the original image at ``((x1 + u + 0.5) / sx - 0.5, (y1 + v +
    0.5) / sy - 0.5)``: the pixel ``(x1 + u, y1 + v)`` of the whole image resized by ``(sx, sy)``
    with half-pixel centres, as ``cv2.resize`` (mmdet's ``Resize``) does, with the border replicated.
    The chip is padded at the bottom and right to ``chip_size`` (an image smaller than a chip is
    padded, never stretched); ``img_shape`` is the padded shape, because ``RandomFlip`` mirrors the
    whole array, padding included.

    Boxes are scaled, clipped to the scaled image and then to the chip (``clip_boxes_to_chips``), in
    chip pixels. A box overlapping the chip is a target (``gt_ignore_flags`` False) if it is valid at
    the chip's scale (``chip_instance_valid``), not already ignored (crowd), and its part inside the
    chip is at least ``min_target_size`` pixels wide and high; every other box overlapping the chip
    becomes an ignore region (``gt_ignore_flags`` True, ``ignored_instances`` after
    ``PackDetInputs``), so that anchors on it are neither positives nor negatives. Boxes outside the
    chip are dropped from this chip only; other chips of the image hold them.

    Required keys: ``img``, ``chip``, ``chip_scale_factor``, ``chip_size``, and with boxes
    ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``, ``chip_instance_valid`` (all from
    :class:`SniperDataset` and ``LoadAnnotations``). Modified keys: ``img``, ``img_shape``, the box
    keys. Added keys: ``scale_factor``, ``pad_shape``, ``homography_matrix``.

    Args:
        min_target_size: the smallest width and height, in chip pixels, of a target's visible part
            (SNIPER: 10).
        interpolation: ``'nearest'``, ``'bilinear'`` (mmdet's default) or ``'bicubic'``.
        pad_val: the value of padded pixels.
    """

    def __init__(self, min_target_size: float = 10.0, interpolation: str = 'bilinear', pad_val: float = 0):
        if min_target_size < 0:
            raise ValueError(f'min_target_size must be >= 0 (chip pixels), got {min_target_size}')
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}')
        self.min_target_size = min_target_size
        self.interpolation = interpolation
        self.pad_val = pad_val

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
        results['img'] = self._crop(img, x1, y1, sx, sy, crop_w, crop_h, chip_size)
        results['img_shape'] = results['pad_shape'] = (chip_size, chip_size)
        results['scale_factor'] = (sx, sy)
        to_chip = np.array([[sx, 0, -x1], [0, sy, -y1], [0, 0, 1]], dtype=np.float32)
        previous = results.get('homography_matrix')
        results['homography_matrix'] = to_chip if previous is None else to_chip @ previous
        if results.get('gt_bboxes') is not None:
            self._crop_boxes(results, chip.astype(np.float32), sx, sy, scaled_w, scaled_h)
        return results

    def _crop(self, img: np.ndarray, x1: float, y1: float, sx: float, sy: float, crop_w: int, crop_h: int,
              chip_size: int) -> np.ndarray:
        import cv2
        chip_to_image = np.array([[1 / sx, 0, (x1 + 0.5) / sx - 0.5], [0, 1 / sy, (y1 + 0.5) / sy - 0.5]])
        flags = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR,
                 'bicubic': cv2.INTER_CUBIC}[self.interpolation] | cv2.WARP_INVERSE_MAP
        crop = cv2.warpAffine(img, chip_to_image, (crop_w, crop_h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        padded = np.full((chip_size, chip_size) + img.shape[2:], self.pad_val, dtype=img.dtype)
        padded[:crop_h, :crop_w] = crop.reshape((crop_h, crop_w) + img.shape[2:])
        return padded

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
        inside = (w > 0) & (h > 0)
        target = inside & valid & ~ignored & (w >= self.min_target_size) & (h >= self.min_target_size)
        kept = clipped[torch.from_numpy(inside)]
        results['gt_bboxes'] = type(boxes)(kept) if isinstance(boxes, BaseBoxes) else kept.numpy()
        results['gt_bboxes_labels'] = np.asarray(results['gt_bboxes_labels'])[inside]
        results['gt_ignore_flags'] = ~target[inside]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_target_size={self.min_target_size}, '
                f'interpolation={self.interpolation!r}, pad_val={self.pad_val})')
