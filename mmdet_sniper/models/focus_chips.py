"""AutoFocus's FocusChips: the regions of an image that the next finer scale has to look at, from
the FocusPixel probabilities predicted at the current scale."""
from typing import List, Tuple

import cv2
import numpy as np


def focus_chips(focus: np.ndarray, threshold: float, dilation: int, min_cells: Tuple[int, int]) -> np.ndarray:
    """Group FocusPixels into chips, as the authors' ``gmask`` (lib/chips/chips_inference.py).

    The cells scoring ``>= threshold`` are dilated by a ``dilation x dilation`` square, then each
    connected group (8-neighbours) becomes the smallest box holding it, widened to at least
    ``min_cells`` about its centre and shifted into the grid. Boxes are painted into the mask and
    the groups found again until their number stops changing (as the authors' loop, at least twice),
    so that chips grown into each other become one. A group is its 8-connected component, holes
    included, where the authors' contours also make each hole a chip of its own (docs/autofocus.md).

    Args:
        focus (np.ndarray): ``(h, w)`` FocusPixel probabilities; NaN counts as below the threshold.
        threshold (float): the probability from which a cell is a FocusPixel.
        dilation (int): side of the dilation square in cells; 1 or less dilates nothing.
        min_cells (tuple[int, int]): ``(width, height)``, the smallest chip in cells; a chip
            does not exceed the grid, so on a smaller grid it is the whole grid.

    Returns:
        np.ndarray: int64 ``(k, 4)`` chips ``(x1, y1, x2, y2)`` in cells, ``0 <= x1 < x2 <= w``,
        in the order of their groups' first cell (row by row); ``(0, 4)`` when no cell reaches the
        threshold.
    """
    focus = np.asarray(focus, dtype=np.float64)
    if focus.ndim != 2:
        raise ValueError(f'focus must be a (h, w) map of probabilities, got shape {focus.shape}')
    if not isinstance(dilation, (int, np.integer)):
        raise ValueError(f'dilation must be an int (cells), got {dilation!r}')
    if len(min_cells) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in min_cells):
        raise ValueError(f'min_cells must be (width, height), ints >= 1 (cells), got {min_cells!r}')
    mask = (focus >= threshold).astype(np.uint8)
    if not mask.any():
        return np.zeros((0, 4), dtype=np.int64)
    if dilation > 1:
        mask = cv2.dilate(mask, np.ones((dilation, dilation), np.uint8))
    _paint(mask, _grown_groups(mask, min_cells))
    chips, count = _grown_groups(mask, min_cells), -1
    while count != len(chips):
        count = len(chips)
        _paint(mask, chips)
        chips = _grown_groups(mask, min_cells)
    return np.asarray(chips, dtype=np.int64).reshape(-1, 4)


def _grown_groups(mask: np.ndarray, min_cells: Tuple[int, int]) -> List[Tuple[int, int, int, int]]:
    """The box of each 8-connected group of ``mask``, widened to ``min_cells`` inside the grid."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    height, width = mask.shape
    chips = []
    for x, y, w, h, _ in stats[1:].tolist():
        x1, x2 = _widen(x, w, min_cells[0], width)
        y1, y2 = _widen(y, h, min_cells[1], height)
        chips.append((x1, y1, x2, y2))
    return chips


def _widen(start: int, size: int, min_size: int, limit: int) -> Tuple[int, int]:
    """``[start, start + size)`` widened to ``min_size`` about its centre, shifted into ``[0, limit)``
    and cut there: the authors' placement, ``x = cx - w // 2`` moved in from either edge."""
    new_size = max(size, min_size)
    new_start = min(max(start + size // 2 - new_size // 2, 0), max(limit - new_size, 0))
    return new_start, min(new_start + new_size, limit)


def _paint(mask: np.ndarray, chips: List[Tuple[int, int, int, int]]) -> None:
    for x1, y1, x2, y2 in chips:
        mask[y1:y2, x1:x2] = 1
