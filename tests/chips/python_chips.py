"""A slow, plain-Python reference implementation of SNIPER chip generation.

It follows docs/chip_generation.md (sections 1-9) rule by rule, with ordinary loops over images,
scales, candidate chips and boxes, so that it can be read next to the specification and trusted.
Tests use it to check the fast implementation (``mmdet_sniper.chips``), which it does not import.

Number formats, as the specification asks:

- float64 (Python ``float``): scale factors ``s_i``, scaled sizes, the validity tests (box size, range,
  scaled size), ``cw' / sx``.
- float32 (``numpy.float32`` scalars): input box coordinates and their clipping, ``sx`` and ``sy``,
  scaled box coordinates ``float32(x1) * sx``, the iof ``|chip & box| / |box|``, the clipped part
  ``cw'``, ``ch'``.
- SplitMix64 with Python ints taken modulo 2**64.

numpy is used for nothing but float32 rounding. Mixing a ``numpy.float32`` with a Python float makes a
float32 under NumPy 2 (a Python float is a "weak" scalar), so every float64 computation below
converts its float32 inputs with ``float()`` first.
"""
import math

import numpy as np

F32 = np.float32
MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


# ----------------------------------------------------------------------------------------------------
# 1. Scales
# ----------------------------------------------------------------------------------------------------

def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _scale_factor(width, height, scales, chip_size, i):
    """s_i (float64) for an image of size width x height."""
    S = len(scales)
    if all(_is_number(s) for s in scales):  # factor form
        if i < S - 1:
            return float(scales[i])
        return float(scales[-1]) / float(max(width, height))
    if all((not _is_number(s)) and len(s) == 2 for s in scales):  # resolution form
        a, b = scales[i]
        terms = []
        if a != -1:
            terms.append(float(a) / float(min(width, height)))
        if b != -1:
            terms.append(float(b) / float(max(width, height)))
        if not terms:
            raise ValueError(f'scale {i}: both bounds are -1')
        return min(terms)
    raise ValueError('scales must be all numbers or all (min_side, max_side) pairs')


def _check_scales(scales, chip_size):
    if len(scales) == 0:
        raise ValueError('scales is empty')
    if all(_is_number(s) for s in scales):
        if not 0 < scales[-1] <= chip_size:
            raise ValueError('the coarsest scale must fit the image into one chip: scales[-1] <= chip_size')
        for s in scales[:-1]:
            if not s > 0:
                raise ValueError('scale factors must be positive')
    elif all((not _is_number(s)) and len(s) == 2 for s in scales):
        b = scales[-1][1]
        if not 0 < b <= chip_size:
            raise ValueError('the coarsest scale must fit the image into one chip: 0 < b <= chip_size')
    else:
        raise ValueError('scales must be all numbers or all (min_side, max_side) pairs')


def scale_geometry(width, height, scales, chip_size):
    """-> list over scales of (Ws, Hs, sx, sy), sx and sy numpy.float32 (spec section 1)."""
    if width < 1 or height < 1:
        raise ValueError(f'image size must be positive, got {width} x {height}')
    _check_scales(scales, chip_size)
    out = []
    for i in range(len(scales)):
        s = _scale_factor(width, height, scales, chip_size, i)
        Ws = max(int(math.floor(float(width) * s + 0.5)), 1)
        Hs = max(int(math.floor(float(height) * s + 0.5)), 1)
        sx = F32(Ws / width)
        sy = F32(Hs / height)
        out.append((Ws, Hs, sx, sy))
    return out


# ----------------------------------------------------------------------------------------------------
# 3. Random numbers (SplitMix64)
# ----------------------------------------------------------------------------------------------------

def _mix(z):
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def nth(key, k):
    """Output k (k = 0, 1, ...) of SplitMix64 seeded with key."""
    return _mix((key + (k + 1) * GOLDEN_GAMMA) & MASK64)


def key(*values):
    """h = 0; for each v: h = nth(h ^ v, 0)."""
    h = 0
    for v in values:
        h = nth(h ^ (int(v) & MASK64), 0)
    return h


# ----------------------------------------------------------------------------------------------------
# 2. Stride of an epoch
# ----------------------------------------------------------------------------------------------------

def epoch_stride(chip_stride, seed, epoch):
    """The stride of an epoch: chip_stride itself, or lo + nth(key(seed, epoch), 0) % (hi - lo)."""
    if _is_number(chip_stride):
        stride = int(chip_stride)
        if stride != chip_stride or stride < 1:
            raise ValueError(f'chip_stride must be a positive int, got {chip_stride}')
        return stride
    lo, hi = chip_stride
    lo, hi = int(lo), int(hi)
    if not 1 <= lo < hi:
        raise ValueError(f'chip_stride (lo, hi) needs 1 <= lo < hi, got {chip_stride}')
    return lo + nth(key(seed, epoch), 0) % (hi - lo)


# ----------------------------------------------------------------------------------------------------
# 4. Boxes and the one validity function
# ----------------------------------------------------------------------------------------------------

def prepare_box(box, width, height):
    """Cast the first four coordinates to float32, check them finite, clip them to the image (float32).

    Returns (x1, y1, x2, y2) as numpy.float32.
    """
    coords = [F32(float(box[j])) for j in range(4)]
    for v in coords:
        if not math.isfinite(float(v)):
            raise ValueError(f'box coordinates must be finite, got {list(box)[:4]}')
    W, H = F32(width), F32(height)
    zero = F32(0)
    x1 = min(max(coords[0], zero), W)
    y1 = min(max(coords[1], zero), H)
    x2 = min(max(coords[2], zero), W)
    y2 = min(max(coords[3], zero), H)
    return (F32(x1), F32(y1), F32(x2), F32(y2))


def box_wh(clipped):
    """Width and height (float64) of a clipped box in the original image."""
    x1, y1, x2, y2 = clipped
    return float(x2) - float(x1), float(y2) - float(y1)


def is_valid(w, h, i, sx, sy, *, num_scales, valid_ranges, chip_size, stride):
    """Whether a box of original width w and height h (float64) is valid at scale i (section 4)."""
    w, h, sx, sy = float(w), float(h), float(sx), float(sy)
    S = num_scales
    if not (w > 0 and h > 0):
        return False
    size = math.sqrt(w * h)
    lo, hi = valid_ranges[i]
    if S == 1:
        in_range = True
    elif i == 0:  # finest, with S > 1: no lower bound
        in_range = hi == -1 or size < hi
    elif i == S - 1:  # coarsest: no upper bound
        in_range = lo == -1 or size >= lo
    else:  # intermediate
        in_range = (lo == -1 or lo <= size) and (hi == -1 or size < hi)
    if not in_range:
        return False
    if i < S - 1:
        if not max(w * sx, h * sy) < chip_size - stride - 1:
            return False
        if not (w * sx >= 2 and h * sy >= 2):
            return False
    return True


# ----------------------------------------------------------------------------------------------------
# 5. Candidate chips of a scale
# ----------------------------------------------------------------------------------------------------

def _left_edges(size, chip_size, stride):
    edges = []
    x = 0
    while x < size - chip_size:
        edges.append(x)
        x += stride
    edges.append(max(size - chip_size, 0))
    return edges


def candidate_chips(Ws, Hs, chip_size, stride):
    """Candidates (x1, y1, x2, y2) as floats, in candidate index order k = iy * len(xs) + ix."""
    cw = min(chip_size, Ws)
    ch = min(chip_size, Hs)
    xs = _left_edges(Ws, chip_size, stride)
    ys = _left_edges(Hs, chip_size, stride)
    chips = []
    for y in ys:
        for x in xs:
            chips.append((float(x), float(y), float(x + cw), float(y + ch)))
    return chips


def scale_box(clipped, sx, sy, Ws, Hs):
    """The box in scaled pixels: float32(x1) * sx etc., in float32, clipped to the Ws x Hs scaled
    image (a coordinate on the far border can round past it)."""
    x1, y1, x2, y2 = clipped
    sx, sy = F32(sx), F32(sy)
    return (min(F32(F32(x1) * sx), F32(Ws)), min(F32(F32(y1) * sy), F32(Hs)),
            min(F32(F32(x2) * sx), F32(Ws)), min(F32(F32(y2) * sy), F32(Hs)))


def chip_box_iof(chip, box):
    """|chip & box| / |box| in float32, as the chip_coverage op computes it (0 for an empty box)."""
    a = [F32(v) for v in chip]
    b = [F32(v) for v in box]
    zero = F32(0)
    w = max(F32(min(a[2], b[2]) - max(a[0], b[0])), zero)
    h = max(F32(min(a[3], b[3]) - max(a[1], b[1])), zero)
    inter = F32(w * h)
    area = F32(max(F32(b[2] - b[0]), zero) * max(F32(b[3] - b[1]), zero))
    return F32(inter / (area if area > zero else F32(1)))


def covers(chip, box, min_iof):
    """Whether the chip covers the box: the float32 iof against min_iof rounded to float32, the
    comparison torch makes between a float32 tensor and a Python number."""
    # Disjoint boxes have iof 0 < min_iof; deciding that with plain comparisons (exact on float32
    # values) skips the slow float32 arithmetic for most pairs.
    if box[0] >= chip[2] or box[2] <= chip[0] or box[1] >= chip[3] or box[3] <= chip[1]:
        return False
    return chip_box_iof(chip, box) >= np.float32(min_iof)


# ----------------------------------------------------------------------------------------------------
# 6. Greedy cover
# ----------------------------------------------------------------------------------------------------

def shuffled_order(num_candidates, item_key):
    """Candidate indices k by ascending nth(item_key, k), ties by k."""
    return sorted(range(num_candidates), key=lambda k: (nth(item_key, k), k))


def greedy_cover(candidates, boxes, item_key, min_iof, min_count):
    """-> list of (pick_chip, [indices of boxes newly covered by it]) in pick order (section 6).

    boxes are scaled float32 boxes. The candidate that covers the most not-yet-covered boxes wins, ties
    to the earliest in the shuffled order; the cover stops when the best count is below min_count.
    """
    if min_count < 1:
        raise ValueError('min_count must be at least 1 (the cover would never stop)')
    order = shuffled_order(len(candidates), item_key)
    covered_by = []  # covered_by[k] = set of box indices candidate k covers
    for chip in candidates:
        covered_by.append({n for n in range(len(boxes)) if covers(chip, boxes[n], min_iof)})
    still_uncovered = set(range(len(boxes)))
    picks = []
    while True:
        best_k, best_count = None, -1
        for k in order:  # strict '>' keeps the earliest in the shuffled order on ties
            count = len(covered_by[k] & still_uncovered)
            if count > best_count:
                best_k, best_count = k, count
        if best_k is None or best_count < min_count:
            break
        newly = sorted(covered_by[best_k] & still_uncovered)
        still_uncovered -= set(newly)
        picks.append((candidates[best_k], newly))
    return picks


# ----------------------------------------------------------------------------------------------------
# 7. Positive chips
# ----------------------------------------------------------------------------------------------------

def _crowd_flags(gt_crowd_list, image, n):
    if gt_crowd_list is None or gt_crowd_list[image] is None:
        return [False] * n
    flags = [bool(v) for v in gt_crowd_list[image]]
    if len(flags) != n:
        raise ValueError(f'image {image}: {n} boxes but {len(flags)} crowd flags')
    return flags


def _check_settings(scales, valid_ranges, chip_size):
    if len(valid_ranges) != len(scales):
        raise ValueError(f'{len(scales)} scales but {len(valid_ranges)} valid ranges')
    _check_scales(scales, chip_size)


def positive_chips(image_sizes, gt_boxes_list, gt_crowd_list=None, *, scales, valid_ranges, chip_size,
                   chip_stride, min_iof=1 - 1e-6, seed=0, epoch=0):
    """Positive chips of every image (sections 2, 4-7, 9).

    Returns dict(stride, chips, uncovered, without_scale): chips are rows
    (image, scale, sx, sy, x1, y1, x2, y2, box_count) ordered by image, scale, pick order, with sx and
    sy the float32 scale factors as Python floats; uncovered and without_scale are sorted
    (image, box_index) pairs of non-crowd boxes.
    """
    _check_settings(scales, valid_ranges, chip_size)
    S = len(scales)
    stride = epoch_stride(chip_stride, seed, epoch)
    chips, uncovered, without_scale = [], [], []
    for image, (W, H) in enumerate(image_sizes):
        geometry = scale_geometry(W, H, scales, chip_size)
        raw_boxes = list(gt_boxes_list[image])
        crowd = _crowd_flags(gt_crowd_list, image, len(raw_boxes))
        clipped = [prepare_box(b, W, H) for b in raw_boxes]
        valid_somewhere = [False] * len(clipped)
        covered_somewhere = [False] * len(clipped)
        for i in range(S):
            Ws, Hs, sx, sy = geometry[i]
            target_ids, target_boxes = [], []
            for n, box in enumerate(clipped):
                if crowd[n]:
                    continue
                w, h = box_wh(box)
                if is_valid(w, h, i, sx, sy, num_scales=S, valid_ranges=valid_ranges, chip_size=chip_size,
                            stride=stride):
                    valid_somewhere[n] = True
                    target_ids.append(n)
                    target_boxes.append(scale_box(box, sx, sy, Ws, Hs))
            if not target_ids:
                continue
            candidates = candidate_chips(Ws, Hs, chip_size, stride)
            picks = greedy_cover(candidates, target_boxes, key(seed, epoch, image, i, 0), min_iof, 1)
            for chip, newly in picks:
                for t in newly:
                    covered_somewhere[target_ids[t]] = True
                chips.append((image, i, float(sx), float(sy), chip[0], chip[1], chip[2], chip[3], len(newly)))
        for n in range(len(clipped)):
            if crowd[n]:
                continue
            if not valid_somewhere[n]:
                without_scale.append((image, n))
            elif not covered_somewhere[n]:
                uncovered.append((image, n))
    return dict(stride=stride, chips=chips, uncovered=sorted(uncovered), without_scale=sorted(without_scale))


# ----------------------------------------------------------------------------------------------------
# 8. Negative chips
# ----------------------------------------------------------------------------------------------------

def negative_chip_pool(image_sizes, proposals_list, positive, gt_boxes_list=None, gt_crowd_list=None, *,
                       scales, valid_ranges, chip_size, min_iof=1 - 1e-6, neg_thresholds=(25, 10), seed=0,
                       epoch=0):
    """The negative-chip pool (section 8 steps 1-2): rows (image, scale, sx, sy, x1, y1, x2, y2, box_count).

    positive is what positive_chips returned; its stride is the stride used here. neg_thresholds is
    (T at the finest scale, T at every other scale).
    """
    _check_settings(scales, valid_ranges, chip_size)
    S = len(scales)
    stride = positive['stride']
    pool = []
    for image, (W, H) in enumerate(image_sizes):
        geometry = scale_geometry(W, H, scales, chip_size)
        # The boxes negative chips are mined from: proposals (first four columns), then the non-crowd
        # ground-truth boxes.
        raw = [tuple(p[j] for j in range(4)) for p in proposals_list[image]]
        if gt_boxes_list is not None and gt_boxes_list[image] is not None:
            gts = list(gt_boxes_list[image])
            crowd = _crowd_flags(gt_crowd_list, image, len(gts))
            for n, b in enumerate(gts):
                if not crowd[n]:
                    raw.append(tuple(b[j] for j in range(4)))
        clipped = [prepare_box(b, W, H) for b in raw]
        for i in range(S):
            Ws, Hs, sx, sy = geometry[i]
            sxf, syf = float(sx), float(sy)
            pos_chips = [row[4:8] for row in positive['chips'] if row[0] == image and row[1] == i]
            not_covered = []
            for box in clipped:
                w, h = box_wh(box)
                if not is_valid(w, h, i, sx, sy, num_scales=S, valid_ranges=valid_ranges, chip_size=chip_size,
                                stride=stride):
                    continue
                scaled = scale_box(box, sx, sy, Ws, Hs)
                is_covered = False
                if pos_chips:
                    best, best_iof = None, None
                    for chip in pos_chips:  # strict '>' keeps the first in pick order on ties
                        iof = chip_box_iof(chip, scaled)
                        if best is None or iof > best_iof:
                            best, best_iof = chip, iof
                    X1, Y1, X2, Y2 = scaled
                    cx1, cy1, cx2, cy2 = (F32(v) for v in best)
                    cw_ = F32(min(X2, cx2) - max(X1, cx1))
                    ch_ = F32(min(Y2, cy2) - max(Y1, cy1))
                    if cw_ > 0 and ch_ > 0:
                        is_covered = is_valid(float(cw_) / sxf, float(ch_) / syf, i, sx, sy, num_scales=S,
                                              valid_ranges=valid_ranges, chip_size=chip_size, stride=stride)
                if not is_covered:
                    not_covered.append(scaled)
            if not not_covered:
                continue
            T = neg_thresholds[0] if i == 0 else neg_thresholds[1]
            candidates = candidate_chips(Ws, Hs, chip_size, stride)
            picks = greedy_cover(candidates, not_covered, key(seed, epoch, image, i, 1), min_iof, T + 1)
            for chip, newly in picks:
                pool.append((image, i, sxf, syf, chip[0], chip[1], chip[2], chip[3], len(newly)))
    return pool


def sample_negative_chips(pool, num_images, chips_per_image, *, seed=0, epoch=0):
    """The epoch's negative chips: per image, the pool rows j = 0..m-1 (in table order) with the
    chips_per_image smallest nth(key(seed, epoch, image, 0, 2), j), ties by j, kept in table order."""
    out = []
    for image in range(num_images):
        rows = [row for row in pool if row[0] == image]
        stream = key(seed, epoch, image, 0, 2)
        ranked = sorted(range(len(rows)), key=lambda j: (nth(stream, j), j))
        chosen = sorted(ranked[:chips_per_image])
        out.extend(rows[j] for j in chosen)
    return out
