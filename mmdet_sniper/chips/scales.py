"""The scale pyramid of SNIPER and the one box-validity rule every part of the method uses.

docs/chip_generation.md, sections 1, 2 and 4.
"""
from numbers import Real
from typing import Sequence, Tuple, Union

import numpy as np

from mmdet_sniper.ops.splitmix64 import derive_key, nth
from .valid_range import ValidRange

ScaleSpec = Union[Real, Tuple[Real, Real]]


class ScalePyramid:
    """Scales, valid ranges and chip size of a SNIPER setting.

    Args:
        scales: highest resolution first. Either numbers, where the last one is the longest image side
            in pixels and the others multiply the original image (the authors' COCO setting,
            ``(3.0, 1.667, 512)``), or ``(min_side, max_side)`` pairs (the short side is resized to
            ``min_side`` unless the long side would exceed ``max_side``; ``-1``: no bound).
        valid_ranges: one ``(lo, hi)`` per scale in original-image pixels of ``sqrt(w * h)``; ``-1``
            means unbounded (:meth:`ValidRange.from_pair`). The finest scale ignores ``lo`` and the
            coarsest ``hi``.
        chip_size: chip side in pixels. The coarsest scale must fit a whole image into one chip.
    """

    def __init__(self, scales: Sequence[ScaleSpec], valid_ranges: Sequence[Tuple[Real, Real]],
                 chip_size: int):
        if not isinstance(chip_size, int) or chip_size < 1:
            raise ValueError(f'chip_size must be an int >= 1 (pixels), got {chip_size!r}')
        scales = list(scales)
        if not scales:
            raise ValueError('scales must hold at least one scale')
        pairs = [isinstance(s, (tuple, list)) for s in scales]
        if any(pairs) and not all(pairs):
            raise ValueError(f'scales must be all numbers or all (min_side, max_side) pairs, got {scales}')
        self.resolution_form = all(pairs)
        if self.resolution_form:
            for s in scales:
                if len(s) != 2 or not all(isinstance(v, Real) for v in s) or max(s) <= 0:
                    raise ValueError(f'each scale must be a (min_side, max_side) pair with at least one '
                                     f'bound > 0 (-1: none), got {s!r}')
            if not 0 < scales[-1][1] <= chip_size:
                raise ValueError(f'the coarsest scale {tuple(scales[-1])} must bound the longest side by '
                                 f'chip_size={chip_size} (0 < max_side <= chip_size), so that a whole image '
                                 'is one chip there')
        else:
            if not all(isinstance(s, Real) and s > 0 for s in scales):
                raise ValueError(f'scale factors must be numbers > 0, got {scales}')
            if scales[-1] > chip_size:
                raise ValueError(f'the last scale ({scales[-1]}, the longest image side in pixels) must be '
                                 f'<= chip_size={chip_size}, so that a whole image is one chip there')
        valid_ranges = [tuple(r) for r in valid_ranges]
        if len(valid_ranges) != len(scales) or any(len(r) != 2 for r in valid_ranges):
            raise ValueError(f'valid_ranges must hold one (lo, hi) pair per scale ({len(scales)}), got '
                             f'{valid_ranges}')
        parsed = [ValidRange.from_pair(r, f'valid_ranges[{i}]') for i, r in enumerate(valid_ranges)]
        # The finest scale takes every box below its upper bound and the coarsest every box above its
        # lower bound, so that no box falls off either end of the pyramid.
        parsed[0] = ValidRange(None, parsed[0].hi)
        parsed[-1] = ValidRange(parsed[-1].lo, None)
        self._ranges = parsed
        self.scales = [tuple(s) if self.resolution_form else s for s in scales]
        self.valid_ranges = valid_ranges
        self.chip_size = chip_size

    @property
    def num_scales(self) -> int:
        return len(self.scales)

    def geometry(self, image_sizes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Scaled sizes int64 ``[I, S, 2]`` (width, height) and scale factors float32 ``[I, S, 2]``
        ``(sx, sy)`` of images of int64 ``[I, 2]`` (width, height) sizes, as mmdet's ``Resize``
        computes them."""
        sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 1, 2)
        long_side = sizes.max(-1)
        short_side = sizes.min(-1)
        factors = []
        for i, scale in enumerate(self.scales):
            if self.resolution_form:
                min_side, max_side = scale
                bounds = [b for b, ok in ((min_side / short_side, min_side > 0),
                                          (max_side / long_side, max_side > 0)) if ok]
                factors.append(np.minimum.reduce(bounds))
            elif i == self.num_scales - 1:
                factors.append(scale / long_side)
            else:
                factors.append(np.full_like(long_side, scale))
        factor = np.concatenate(factors, axis=1)[..., None]  # [I, S, 1]
        scaled = np.maximum(np.floor(sizes * factor + 0.5), 1).astype(np.int64)
        return scaled, (scaled / sizes).astype(np.float32)

    def valid(self, widths: np.ndarray, heights: np.ndarray, scale_index: int, scale_factors: np.ndarray,
              stride: int) -> np.ndarray:
        """Whether boxes of these original-image widths and heights are valid at a scale: the one
        rule for chip selection, proposal assignment and training targets (section 4).

        Args:
            widths, heights: ``[E]`` in original-image pixels.
            scale_index: ``0`` is the finest scale.
            scale_factors: ``[E, 2]`` ``(sx, sy)`` of each box's image at that scale.
            stride: the epoch's chip stride in pixels.
        """
        w, h = np.asarray(widths, dtype=np.float64), np.asarray(heights, dtype=np.float64)
        return self._valid(w, h, self._size(w, h), scale_index, scale_factors, stride)

    def valid_at_every_scale(self, widths: np.ndarray, heights: np.ndarray, scale_factors: np.ndarray,
                             stride: int) -> np.ndarray:
        """:meth:`valid` at every scale: bool ``[S, E]`` for ``scale_factors`` of shape ``[E, S, 2]``."""
        w, h = np.asarray(widths, dtype=np.float64), np.asarray(heights, dtype=np.float64)
        size = self._size(w, h)
        return np.stack([self._valid(w, h, size, s, scale_factors[:, s], stride) for s in range(self.num_scales)])

    @staticmethod
    def _size(w: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(w * h, 0))

    def range_at(self, scale_index: int) -> ValidRange:
        """The valid range of a scale as applied (:meth:`ValidRange.contains`): ``valid_ranges``'s,
        with no lower bound at the finest scale and no upper bound at the coarsest."""
        return self._ranges[scale_index]

    def effective_range(self, scale_index: int) -> Tuple[float, float]:
        """:meth:`range_at` as the plain ``(lo, hi)`` pair, ``-1`` unbounded, that metainfo carries."""
        return self._ranges[scale_index].to_pair()

    def _valid(self, w, h, size, scale_index, scale_factors, stride) -> np.ndarray:
        ok = (w > 0) & (h > 0) & self._ranges[scale_index].contains(size)
        if scale_index < self.num_scales - 1:
            # A box must fit a chip with a stride to spare, so that some window of the grid holds it.
            scaled_w = w * scale_factors[..., 0].astype(np.float64)
            scaled_h = h * scale_factors[..., 1].astype(np.float64)
            ok &= np.maximum(scaled_w, scaled_h) < self.chip_size - stride - 1
            ok &= (scaled_w >= 2) & (scaled_h >= 2)
        return ok


def epoch_stride(chip_stride: Union[int, Tuple[int, int]], seed: int, epoch: int) -> int:
    """The chip stride of an epoch: ``chip_stride`` itself, or drawn from ``lo .. hi - 1`` by the
    ``(seed, epoch)`` stream, the same on every rank."""
    if isinstance(chip_stride, int):
        return chip_stride
    lo, hi = chip_stride
    return lo + int(nth(derive_key(seed, epoch), 0) % np.uint64(hi - lo))


def check_chip_stride(chip_stride, chip_size: int) -> None:
    if isinstance(chip_stride, int):
        strides_ok = 1 <= chip_stride < chip_size - 2
    else:
        strides_ok = (isinstance(chip_stride, (tuple, list)) and len(chip_stride) == 2
                      and all(isinstance(v, int) for v in chip_stride)
                      and 1 <= chip_stride[0] < chip_stride[1] <= chip_size - 2)
    if not strides_ok:
        raise ValueError(f'chip_stride must be an int or an int range (lo, hi) drawing lo..hi-1, with '
                         f'1 <= stride < chip_size - 2 = {chip_size - 2}; got {chip_stride!r}')
