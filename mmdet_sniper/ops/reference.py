"""Pure-torch references of the compiled chip ops: the specification the kernels are tested
against, written for clarity, vectorised over the batch. Same shapes and conventions as
:mod:`mmdet_sniper.ops.chip_ops`; no argument checking."""
from typing import Tuple

import torch

from .grid_cover import dense_chip_grid_cover


def _area(boxes: torch.Tensor) -> torch.Tensor:
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return torch.where((w > 0) & (h > 0), w * h, torch.zeros_like(w))


def _intersection(chips: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """[B, K, 4] x [B, N, 4] -> [B, K, N] intersection areas."""
    c = chips[:, :, None, :]
    b = boxes[:, None, :, :]
    w = torch.minimum(c[..., 2], b[..., 2]) - torch.maximum(c[..., 0], b[..., 0])
    h = torch.minimum(c[..., 3], b[..., 3]) - torch.maximum(c[..., 1], b[..., 1])
    return torch.where((w > 0) & (h > 0), w * h, torch.zeros_like(w))


def chip_coverage(chips: torch.Tensor, boxes: torch.Tensor, mode: str = 'iof') -> torch.Tensor:
    inter = _intersection(chips, boxes)
    box_area = _area(boxes)[:, None, :].expand_as(inter)
    if mode == 'iof':
        denominator = box_area
    else:
        denominator = _area(chips)[:, :, None] + box_area - inter
    ratio = inter / torch.where(box_area > 0, denominator, torch.ones_like(denominator))
    return torch.where(box_area > 0, ratio, torch.zeros_like(ratio))


def greedy_chip_cover(covers: torch.Tensor, min_count: int = 1) -> torch.Tensor:
    B, K, N = covers.shape
    picks = torch.full((B, K), -1, dtype=torch.int64, device=covers.device)
    if B == 0 or K == 0:
        return picks
    uncovered = torch.ones(B, N, dtype=torch.bool, device=covers.device)
    active = torch.ones(B, dtype=torch.bool, device=covers.device)
    batch = torch.arange(B, device=covers.device)
    for step in range(K):
        counts = (covers & uncovered[:, None, :]).sum(-1)
        best = counts.argmax(-1)  # argmax returns the first maximal index: ties go to the lowest chip
        # Counts only fall, so an item that stops once stays stopped.
        active &= counts[batch, best] >= min_count
        if not bool(active.any()):
            break
        picks[active, step] = best[active]
        uncovered &= ~(covers[batch, best] & active[:, None])
    return picks


def clip_boxes_to_chips(boxes: torch.Tensor, chips: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    c = chips[:, :, None, :]
    b = boxes[:, None, :, :]
    x1 = torch.minimum(torch.maximum(b[..., 0], c[..., 0]), c[..., 2]) - c[..., 0]
    y1 = torch.minimum(torch.maximum(b[..., 1], c[..., 1]), c[..., 3]) - c[..., 1]
    x2 = torch.minimum(torch.maximum(b[..., 2], c[..., 0]), c[..., 2]) - c[..., 0]
    y2 = torch.minimum(torch.maximum(b[..., 3], c[..., 1]), c[..., 3]) - c[..., 1]
    return torch.stack([x1, y1, x2, y2], dim=-1), chip_coverage(chips, boxes, 'iof')


def assign_boxes_to_chips(boxes: torch.Tensor, chips: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    iof = chip_coverage(chips, boxes, 'iof')  # [B, K, N]
    if iof.shape[1] == 0:
        return (torch.full(boxes.shape[:2], -1, dtype=torch.int64, device=boxes.device),
                torch.zeros_like(boxes))
    best_iof, best = iof.max(dim=1)  # the first maximal index on ties
    best = torch.where(best_iof > 0, best, torch.full_like(best, -1))
    clipped, _ = clip_boxes_to_chips(boxes, chips)  # [B, K, N, 4]
    part = torch.gather(clipped, 1, best.clamp(min=0)[:, None, :, None].expand(-1, 1, -1, 4))[:, 0]
    return best, torch.where(best[..., None] >= 0, part, torch.zeros_like(part))


def chip_grid_cover(boxes: torch.Tensor, image_sizes: torch.Tensor, shuffle_keys: torch.Tensor,
                    chip_size: int, stride: int, min_iof: float = 1 - 1e-6,
                    min_count: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    # Every candidate of the grid against every box, then the plain greedy cover: none of the
    # kernel's rectangle search.
    return dense_chip_grid_cover(boxes, image_sizes, shuffle_keys, chip_size, stride, min_iof, min_count,
                                 coverage=chip_coverage, greedy=greedy_chip_cover)
