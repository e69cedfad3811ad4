"""Images whose pixels spell where they are, so that a fake detector knows which window of which
view it was given (the sliced and AutoFocus tests)."""
from numbers import Real
from typing import Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from torch import Tensor


def encode_positions(width: int, height: int, view_index: int) -> Tensor:
    """A uint8 ``(3, height, width)`` image whose pixel ``(x, y)`` spells ``x``, ``y`` and the view
    (``x, y < 2048``, ``view_index < 4``)."""
    if not (0 < width <= 2048 and 0 < height <= 2048 and 0 <= view_index < 4):
        raise ValueError(f'encode_positions spells x, y < 2048 and 4 views, got {width}x{height}, view {view_index}')
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    return torch.from_numpy(np.stack([x % 256, y % 256, x // 256 + 8 * (y // 256) + 64 * view_index]).astype(np.uint8))


def decode_position(image: Tensor) -> Tuple[int, int, int]:
    """``(x, y, view_index)`` of the top-left pixel of a window cut from :func:`encode_positions`'
    image (after a data preprocessor with mean 0 and std 1)."""
    c0, c1, c2 = (int(v) for v in image[:, 0, 0])
    return c0 + 256 * (c2 % 8), c1 + 256 * (c2 // 8 % 8), c2 // 64


def encoded_view(objects: np.ndarray, width: int, height: int, scale: float, flip: bool,
                 valid_range: Sequence[Real], view_index: int = 0) -> Tuple[Tensor, DetDataSample, np.ndarray]:
    """A view of a ``width x height`` image at ``scale``, horizontally flipped or not, as a test
    pipeline makes it: its :func:`encode_positions` image, its sample (``img_shape``,
    ``scale_factor``, ``flip``, ``valid_range``...), and ``objects`` (``(n, 4)`` original pixels) in
    its pixels."""
    view_w, view_h = round(width * scale), round(height * scale)
    boxes = objects * scale
    if flip:
        boxes = np.stack([view_w - boxes[:, 2], boxes[:, 1], view_w - boxes[:, 0], boxes[:, 3]], axis=1)
    sample = DetDataSample(metainfo=dict(ori_shape=(height, width), img_shape=(view_h, view_w),
                                         scale_factor=(scale, scale), flip=flip,
                                         flip_direction='horizontal' if flip else None, valid_range=valid_range))
    return encode_positions(view_w, view_h, view_index), sample, boxes
