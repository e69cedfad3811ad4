"""The chip grid cover written as a composition of the dense ops: candidate grid, ``chip_coverage``,
``greedy_chip_cover``.

It is how ``chip_grid_cover`` runs on the GPU (the dense ops parallelise over every chip-box pair,
where the CPU kernel walks each image's grid sequentially) and, composed with the pure-torch
references instead, the reference the CPU kernel is tested against. docs/chip_generation.md,
sections 5 and 6.
"""
from typing import Callable, Tuple

import numpy as np
import torch

from .splitmix64 import nth

_UINT64_MAX = np.iinfo(np.uint64).max


def _axis_starts(sizes: np.ndarray, chip_size: int, stride: int) -> Tuple[np.ndarray, np.ndarray]:
    """Left edges ``[B, max_count]`` of the windows along one axis, and their count per item."""
    overhang = sizes - chip_size
    # Multiples of the stride strictly below the overhang, then the window flush with the far edge.
    counts = np.where(overhang > 0, -(-overhang // stride), 0) + 1
    j = np.arange(counts.max(initial=1))[None, :]
    starts = np.where(j < counts[:, None] - 1, j * stride, np.maximum(overhang, 0)[:, None])
    return starts, counts


def candidate_grid(image_sizes: np.ndarray, chip_size: int, stride: int, keys: np.ndarray):
    """Every item's candidate chips, in its shuffled order.

    Args:
        image_sizes: int64 ``[B, 2]`` (width, height) of the scaled images, in pixels.
        chip_size, stride: pixels.
        keys: uint64 ``[B]`` shuffle keys.

    Returns:
        float32 ``[B, K, 4]`` chips in scaled pixels, sorted by shuffle priority, padded with empty
        boxes; int64 ``[B, K]`` their candidate index ``k = iy * nx + ix`` (-1 for padding).
    """
    B = image_sizes.shape[0]
    xs, nx = _axis_starts(image_sizes[:, 0], chip_size, stride)
    ys, ny = _axis_starts(image_sizes[:, 1], chip_size, stride)
    ix = np.arange(xs.shape[1])[None, None, :]
    iy = np.arange(ys.shape[1])[None, :, None]
    valid = (ix < nx[:, None, None]) & (iy < ny[:, None, None])
    # K spelled out: reshape(B, -1) cannot infer it when B is 0.
    K = ys.shape[1] * xs.shape[1]
    k = np.where(valid, iy * nx[:, None, None] + ix, -1).reshape(B, K)
    priority = np.where(valid.reshape(B, K), nth(keys[:, None], np.maximum(k, 0)), _UINT64_MAX)
    # A stable sort of a row-major layout breaks priority ties by k, as the kernels do.
    order = np.argsort(priority, axis=1, kind='stable')
    x1 = np.broadcast_to(xs[:, None, :], valid.shape).reshape(B, K)
    y1 = np.broadcast_to(ys[:, :, None], valid.shape).reshape(B, K)
    width = np.minimum(chip_size, image_sizes[:, 0])[:, None]
    height = np.minimum(chip_size, image_sizes[:, 1])[:, None]
    chips = np.stack([x1, y1, x1 + width, y1 + height], axis=-1).astype(np.float32)
    chips[~valid.reshape(B, K)] = 0
    return (np.take_along_axis(chips, order[:, :, None], axis=1), np.take_along_axis(k, order, axis=1))


def dense_chip_grid_cover(boxes: torch.Tensor, image_sizes: torch.Tensor, shuffle_keys: torch.Tensor,
                          chip_size: int, stride: int, min_iof: float, min_count: int, *,
                          coverage: Callable, greedy: Callable,
                          max_pairs: int = 1 << 26) -> Tuple[torch.Tensor, torch.Tensor]:
    """``chip_grid_cover`` (same arguments and results) from ``coverage`` and ``greedy``, which are
    ``chip_coverage`` and ``greedy_chip_cover`` or their references. Items are processed in chunks
    of at most ``max_pairs`` chip-box pairs to bound the dense coverage matrix."""
    B, N = boxes.shape[0], boxes.shape[1]
    keys = shuffle_keys.cpu().numpy().astype(np.int64).astype(np.uint64)
    grid, _ = candidate_grid(image_sizes.cpu().numpy().astype(np.int64), chip_size, stride, keys)
    grid = torch.from_numpy(grid).to(boxes.device)
    K = grid.shape[1]
    chips = boxes.new_zeros((B, N, 4))
    box_pick = torch.full((B, N), -1, dtype=torch.int64, device=boxes.device)
    step = max(1, max_pairs // max(K * N, 1))
    for start in range(0, B, step):
        part = slice(start, min(start + step, B))
        covers = coverage(grid[part], boxes[part], 'iof') >= min_iof
        picks = greedy(covers, min_count)
        # Replay the picks to know which boxes each one newly covered.
        rows = torch.arange(covers.shape[0], device=boxes.device)
        covered = torch.zeros_like(covers[:, 0])
        for t in range(min(K, N)):
            pick = picks[:, t]
            active = pick >= 0
            if not bool(active.any()):
                break
            pick = pick.clamp(min=0)
            new = covers[rows, pick] & ~covered & active[:, None]
            box_pick[part][new] = t
            covered |= new
            chips[part, t] = torch.where(active[:, None], grid[part][rows, pick], 0.0)
    return chips, box_pick
