"""Python side of the compiled chip ops: one thin wrapper per op and its fake kernel.

Boxes and chips are mmdet 3.x ``(x1, y1, x2, y2)`` float32 pixel coordinates; a box with
``x2 <= x1`` or ``y2 <= y1`` is empty (padding rows are written that way) and covers nothing.
The kernels validate their arguments and raise ``TypeError`` / ``ValueError`` naming the argument.
"""
from typing import Tuple

import torch

from mmdet_sniper import _C  # noqa: F401  (loading it registers the torch.ops.sniper kernels)
from mmdet_sniper.compat import register_fake, register_kernel
from .grid_cover import dense_chip_grid_cover


def chip_coverage(chips: torch.Tensor, boxes: torch.Tensor, mode: str = 'iof') -> torch.Tensor:
    """How much of every box each chip of the same batch item covers.

    Args:
        chips: float32 ``[B, K, 4]`` chip boxes in pixels.
        boxes: float32 ``[B, N, 4]`` boxes in pixels, on the same device as ``chips``.
        mode: ``'iof'`` for ``|chip ∩ box| / |box|`` (1.0: the box lies wholly inside the chip) or
            ``'iou'`` for ``|chip ∩ box| / |chip ∪ box|``.

    Returns:
        float32 ``[B, K, N]`` in ``[0, 1]``; 0 for an empty box or chip.
    """
    return torch.ops.sniper.chip_coverage(chips, boxes, mode)


def greedy_chip_cover(covers: torch.Tensor, min_count: int = 1) -> torch.Tensor:
    """SNIPER's chip selection: a greedy set cover of the boxes by the chips, per batch item.

    Repeatedly picks the chip that covers the most still-uncovered boxes (ties go to the lowest chip
    index) and marks its boxes covered, until the best chip would cover fewer than ``min_count``.

    Args:
        covers: bool ``[B, K, N]``; ``covers[b, k, n]`` says chip ``k`` covers box ``n``.
        min_count: the fewest newly covered boxes a chip must bring to be picked, ``>= 1``.

    Returns:
        int64 ``[B, K]``: row ``b`` holds the picked chip indices in pick order, padded with -1.
    """
    return torch.ops.sniper.greedy_chip_cover(covers, min_count)


def clip_boxes_to_chips(boxes: torch.Tensor, chips: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Clips every box to every chip of the same batch item, in that chip's coordinates.

    Args:
        boxes: float32 ``[B, N, 4]`` boxes in pixels.
        chips: float32 ``[B, K, 4]`` chip boxes in pixels, on the same device as ``boxes``.

    Returns:
        ``(clipped, iof)``: float32 ``[B, K, N, 4]`` boxes clipped to the chip, in pixels relative to
        the chip's top-left corner (a box outside the chip comes out empty), and float32
        ``[B, K, N]``, the fraction of each box's area kept (0 for an empty box).
    """
    return torch.ops.sniper.clip_boxes_to_chips(boxes, chips)


def assign_boxes_to_chips(boxes: torch.Tensor, chips: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Assigns every box to the chip of the same batch item that holds the largest fraction of it.

    Args:
        boxes: float32 ``[B, N, 4]`` boxes in pixels.
        chips: float32 ``[B, K, 4]`` chip boxes in pixels, on the same device as ``boxes``.

    Returns:
        ``(chip_index, part)``: int64 ``[B, N]`` the chip with the largest iof, the lowest index on
        ties, -1 where no chip holds any of the box (an empty box included); and float32
        ``[B, N, 4]`` the box clipped to that chip, in pixels relative to its top-left corner (zeros
        without a chip).
    """
    return torch.ops.sniper.assign_boxes_to_chips(boxes, chips)


def chip_grid_cover(boxes: torch.Tensor, image_sizes: torch.Tensor, shuffle_keys: torch.Tensor,
                    chip_size: int, stride: int, min_iof: float = 1 - 1e-6,
                    min_count: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """SNIPER's chip selection on each image's grid of candidate chips (docs/chip_generation.md,
    sections 5-6): the greedy cover of the boxes by candidates visited in a shuffled order.

    The candidates of an item are the ``chip_size`` windows at multiples of ``stride`` plus those
    flush with the right and bottom edges; a window spans the whole axis where the image is smaller
    than a chip. A candidate covers a box when ``|chip ∩ box| / |box| >= min_iof``. Repeatedly the
    candidate covering the most uncovered boxes is picked, ties going to the lowest SplitMix64
    priority ``nth(shuffle_key, k)`` of its index ``k = iy * nx + ix``, until the best covers fewer
    than ``min_count``. On the CPU a kernel walks each grid; on CUDA the same result is composed from
    ``chip_coverage`` and ``greedy_chip_cover``.

    Args:
        boxes: float32 ``[B, N, 4]`` boxes in the scaled image's pixels; empty rows (padding) are
            never covered.
        image_sizes: int64 ``[B, 2]`` (width, height) of each scaled image in pixels, ``>= 1``.
        shuffle_keys: int64 ``[B]`` SplitMix64 keys (uint64 bits) of the candidate order.
        chip_size, stride: pixels, ``>= 1``.
        min_iof: the covered fraction of a box that counts as inside, in ``(0, 1]``.
        min_count: the fewest newly covered boxes a pick must bring, ``>= 1``.

    Returns:
        ``(chips, box_pick)``: float32 ``[B, N, 4]`` the picked chips in pick order (rows after the
        last pick are zero), and int64 ``[B, N]`` the pick that first covered each box, -1 for none.
    """
    return torch.ops.sniper.chip_grid_cover(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof,
                                            min_count)


# Fake kernels: output shapes for torch.compile and meta tensors. They reject what the compiled
# kernels reject that can be seen without data (dtype, shape, device, batch size).

def _check_boxes_meta(boxes: torch.Tensor, name: str) -> None:
    if boxes.dtype != torch.float32:
        raise TypeError(f'{name} must be float32 (x1, y1, x2, y2 in pixels), got {boxes.dtype}')
    if boxes.dim() != 3 or boxes.shape[2] != 4:
        raise ValueError(f'{name} must have shape [B, M, 4] (x1, y1, x2, y2), got {list(boxes.shape)}')


def _check_same_batch_meta(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if a.device != b.device:
        raise ValueError(f'{a_name} and {b_name} must be on the same device, got {a.device} and {b.device}')
    if a.shape[0] != b.shape[0]:
        raise ValueError(f'{a_name} and {b_name} must have the same batch size B, '
                         f'got {a.shape[0]} and {b.shape[0]}')


def _check_boxes_and_chips_meta(boxes: torch.Tensor, chips: torch.Tensor) -> None:
    _check_boxes_meta(boxes, 'boxes')
    _check_boxes_meta(chips, 'chips')
    _check_same_batch_meta(boxes, 'boxes', chips, 'chips')


@register_fake('sniper::chip_coverage')
def _chip_coverage_fake(chips, boxes, mode='iof'):
    _check_boxes_and_chips_meta(boxes, chips)
    if mode not in ('iof', 'iou'):
        raise ValueError(f"mode must be 'iof' or 'iou', got '{mode}'")
    return chips.new_empty((chips.shape[0], chips.shape[1], boxes.shape[1]))


@register_fake('sniper::greedy_chip_cover')
def _greedy_chip_cover_fake(covers, min_count=1):
    if covers.dtype != torch.bool:
        raise TypeError(f'covers must be bool, got {covers.dtype}')
    if covers.dim() != 3:
        raise ValueError(f'covers must have shape [B, K, N] (batch, chips, boxes), got {list(covers.shape)}')
    if covers.shape[1] >= 2**31:
        raise ValueError(f'covers must have fewer than 2^31 chips, got {covers.shape[1]}')
    if min_count < 1:
        raise ValueError(f'min_count must be >= 1, got {min_count}')
    return covers.new_empty((covers.shape[0], covers.shape[1]), dtype=torch.int64)


@register_fake('sniper::clip_boxes_to_chips')
def _clip_boxes_to_chips_fake(boxes, chips):
    _check_boxes_and_chips_meta(boxes, chips)
    B, K, N = chips.shape[0], chips.shape[1], boxes.shape[1]
    return boxes.new_empty((B, K, N, 4)), boxes.new_empty((B, K, N))


@register_fake('sniper::assign_boxes_to_chips')
def _assign_boxes_to_chips_fake(boxes, chips):
    _check_boxes_and_chips_meta(boxes, chips)
    B, N = boxes.shape[0], boxes.shape[1]
    return boxes.new_empty((B, N), dtype=torch.int64), boxes.new_empty((B, N, 4))


def _check_grid_cover_meta(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof, min_count):
    _check_boxes_meta(boxes, 'boxes')
    if image_sizes.dtype != torch.int64:
        raise TypeError(f'image_sizes must be int64 (width, height), got {image_sizes.dtype}')
    if image_sizes.dim() != 2 or image_sizes.shape[1] != 2:
        raise ValueError(f'image_sizes must have shape [B, 2] (width, height), got {list(image_sizes.shape)}')
    _check_same_batch_meta(boxes, 'boxes', image_sizes, 'image_sizes')
    if shuffle_keys.dtype != torch.int64:
        raise TypeError(f'shuffle_keys must be int64, got {shuffle_keys.dtype}')
    if shuffle_keys.dim() != 1:
        raise ValueError(f'shuffle_keys must have shape [B], got {list(shuffle_keys.shape)}')
    _check_same_batch_meta(boxes, 'boxes', shuffle_keys, 'shuffle_keys')
    for name, value in (('chip_size', chip_size), ('stride', stride)):
        if value < 1:
            raise ValueError(f'{name} must be >= 1, got {value}')
    if not 0 < min_iof <= 1:
        raise ValueError(f'min_iof must be in (0, 1], got {min_iof}')
    if min_count < 1:
        raise ValueError(f'min_count must be >= 1, got {min_count}')


@register_fake('sniper::chip_grid_cover')
def _chip_grid_cover_fake(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof, min_count=1):
    _check_grid_cover_meta(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof, min_count)
    B, N = boxes.shape[0], boxes.shape[1]
    return boxes.new_empty((B, N, 4)), boxes.new_empty((B, N), dtype=torch.int64)


# On CUDA the grid cover is composed from the dense CUDA kernels rather than a kernel of its own: the
# greedy walk over one image's grid is sequential, and the dense ops already spread the chip-box pairs
# over the GPU.
@register_kernel('sniper::chip_grid_cover', 'CUDA')
def _chip_grid_cover_cuda(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof, min_count=1):
    _check_grid_cover_meta(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof, min_count)
    if not bool(torch.isfinite(boxes).all()):
        raise ValueError('boxes must hold finite coordinates, found NaN or inf')
    if image_sizes.numel() and int(image_sizes.min()) < 1:
        raise ValueError(f'image_sizes must be >= 1 pixel, got {int(image_sizes.min())}')
    return dense_chip_grid_cover(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof, min_count,
                                 coverage=chip_coverage, greedy=greedy_chip_cover)
