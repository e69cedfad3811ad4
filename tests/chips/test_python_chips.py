"""Hand-computed checks of the pure-Python chip reference (tests/chips/python_chips.py)."""
import math

import numpy as np
import pytest

from .python_chips import (candidate_chips, chip_box_iof, covers, epoch_stride, greedy_cover, is_valid, key,
                           negative_chip_pool, nth, positive_chips, sample_negative_chips, scale_box, scale_geometry,
                           shuffled_order)

DEFAULTS = dict(scales=(3.0, 1.667, 512), valid_ranges=((-1, 80), (32, 150), (120, -1)), chip_size=512)
F32 = np.float32


# ---- 3. SplitMix64 ----------------------------------------------------------------------------------

def test_splitmix64_known_outputs():
    # The well-known first outputs of SplitMix64 seeded with 0.
    assert nth(0, 0) == 0xE220A8397B1DCDAF
    assert nth(0, 1) == 0x6E789E6AA1B965F4
    assert nth(0, 2) == 0x06C45D188009454F
    assert all(0 <= nth(2**64 - 1, k) < 2**64 for k in range(5))


def test_key_chains_nth():
    assert key() == 0
    assert key(5) == nth(5, 0)
    assert key(1, 2) == nth(nth(1, 0) ^ 2, 0)
    assert key(1, 2, 3) == nth(key(1, 2) ^ 3, 0)
    assert key(1, 2) != key(2, 1)


# ---- 2. stride ----------------------------------------------------------------------------------------

def test_epoch_stride():
    assert epoch_stride(57, seed=3, epoch=9) == 57
    assert epoch_stride((56, 57), 3, 9) == 56
    for seed, epoch in [(0, 0), (0, 1), (7, 3)]:
        assert epoch_stride((56, 60), seed, epoch) == 56 + nth(key(seed, epoch), 0) % 4
    strides = {epoch_stride((56, 60), 0, e) for e in range(40)}
    assert strides == {56, 57, 58, 59}


# ---- 1. scales -----------------------------------------------------------------------------------------

def test_scale_geometry_factor_form_640x480():
    g = scale_geometry(640, 480, (3.0, 1.667, 512), 512)
    # 640 * 1.667 = 1066.88 -> 1067, 480 * 1.667 = 800.16 -> 800; last scale 512 / 640 = 0.8.
    assert [(Ws, Hs) for Ws, Hs, _, _ in g] == [(1920, 1440), (1067, 800), (512, 384)]
    assert all(type(sx) is np.float32 and type(sy) is np.float32 for _, _, sx, sy in g)
    assert (g[0][2], g[0][3]) == (F32(3.0), F32(3.0))
    assert g[1][2] == F32(1.6671875) and g[1][3] == F32(800 / 480)
    assert (g[2][2], g[2][3]) == (F32(0.8), F32(0.8))


def test_scale_geometry_resolution_form_and_minimum_size():
    g = scale_geometry(640, 480, ((1400, 2000), (800, 1280), (-1, 512)), 512)
    # s0 = min(1400/480, 2000/640) = 2.9167: 640 * 2.9167 = 1866.7 -> 1867; s1 = min(800/480, 1280/640).
    assert [(Ws, Hs) for Ws, Hs, _, _ in g] == [(1867, 1400), (1067, 800), (512, 384)]
    # 1 * 512/3000 + 0.5 floors to 0; the scaled size is at least 1.
    assert scale_geometry(1, 3000, (512,), 512)[0][:2] == (1, 512)
    with pytest.raises(ValueError):
        scale_geometry(640, 480, (3.0, 600), 512)  # the coarsest scale does not fit one chip
    with pytest.raises(ValueError):
        scale_geometry(640, 480, ((800, 1280), (-1, 600)), 512)


# ---- 5. candidates and coverage --------------------------------------------------------------------------

def test_candidate_chips():
    # Ws - c = 88: multiples of 56 below 88 are 0, 56, then the flush edge 88. Hs < c: one row, 500 high.
    assert candidate_chips(600, 500, 512, 56) == [(0.0, 0.0, 512.0, 500.0), (56.0, 0.0, 568.0, 500.0),
                                                  (88.0, 0.0, 600.0, 500.0)]
    # Ws - c = 112 = 2 * 56 is not strictly below itself: no duplicate edge.
    assert [c[0] for c in candidate_chips(624, 512, 512, 56)] == [0.0, 56.0, 112.0]
    # An image smaller than a chip is one chip of its own size.
    assert candidate_chips(300, 200, 512, 56) == [(0.0, 0.0, 300.0, 200.0)]
    # k = iy * len(xs) + ix.
    chips = candidate_chips(600, 600, 512, 56)
    assert len(chips) == 9
    assert chips[1] == (56.0, 0.0, 568.0, 512.0) and chips[3] == (0.0, 56.0, 512.0, 568.0)
    assert chips[8] == (88.0, 88.0, 600.0, 600.0)


def test_covers_uses_float32_iof_and_tolerance():
    chip = (0.0, 0.0, 512.0, 512.0)
    assert chip_box_iof(chip, (500.0, 0.0, 520.0, 10.0)) == F32(0.6)
    assert not covers(chip, (500.0, 0.0, 520.0, 10.0), 1 - 1e-6)
    assert covers(chip, (500.0, 0.0, 520.0, 10.0), 0.6)
    # The threshold is rounded to float32 like the iof: 0.60000003 becomes float32(0.6), so the iof
    # float32(0.6) = 0.6000000238 passes it; 0.6000001 rounds to the next float32 up and does not.
    assert covers(chip, (500.0, 0.0, 520.0, 10.0), 0.60000003)
    assert not covers(chip, (500.0, 0.0, 520.0, 10.0), 0.6000001)
    # float32(512.0001) = 512 + 2 ** -13: the box sticks out by 1.2e-4 px, 6.1e-7 of its 200 px width
    # (covered) but 1.09e-6 of a 112 px one (not covered).
    assert F32(512.0001) == 512 + 2 ** -13
    box = (F32(312.0), F32(0.0), F32(512.0001), F32(10.0))
    assert covers(chip, box, 1 - 1e-6) and not covers(chip, box, 1.0)
    assert not covers(chip, (F32(400.0), F32(0.0), F32(512.0001), F32(10.0)), 1 - 1e-6)
    assert chip_box_iof(chip, (10.0, 10.0, 10.0, 50.0)) == 0  # an empty box covers nothing
    assert not covers(chip, (10.0, 10.0, 10.0, 50.0), 1 - 1e-6)


# ---- 4. validity -------------------------------------------------------------------------------------------

def _valid(w, h, i, sx=1.0, sy=1.0, stride=56, S=3, ranges=DEFAULTS['valid_ranges']):
    return is_valid(w, h, i, F32(sx), F32(sy), num_scales=S, valid_ranges=ranges, chip_size=512, stride=stride)


def test_validity_range_boundaries():
    # finest: size < 80, no lower bound (down to 2 scaled pixels)
    assert _valid(79.99, 79.99, 0) and not _valid(80, 80, 0)
    assert _valid(1, 1, 0, sx=3, sy=3) and _valid(1, 1, 0, sx=2, sy=2)
    assert not _valid(0.5, 0.5, 0, sx=3, sy=3) and not _valid(1, 1, 0, sx=1.5, sy=3)
    # intermediate: 32 <= size < 150
    assert _valid(32, 32, 1) and not _valid(31.99, 32, 1)
    assert _valid(149.99, 149.99, 1) and not _valid(150, 150, 1)
    assert _valid(16, 64, 1) and not _valid(15.9, 64, 1)  # sqrt(w * h)
    # coarsest: size >= 120, no upper bound, no scaled-size bound
    assert _valid(120, 120, 2) and not _valid(119.99, 120, 2)
    assert _valid(5000, 3000, 2, sx=0.1, sy=0.1)
    # empty boxes are never valid
    assert not _valid(0, 200, 2) and not _valid(200, 0, 2) and not _valid(-5, 200, 2)


def test_validity_scaled_size_bound():
    # c - stride - 1 = 455 at stride 56: the scaled box must be smaller than that.
    assert _valid(454.9, 10, 1) and not _valid(455, 10, 1)
    assert _valid(10, 454.9, 1) and not _valid(10, 455, 1)
    assert not _valid(300, 60, 1, sx=1.667, sy=1.667)  # size 134 is in range, 300 * 1.667 = 500 is not
    assert _valid(451.9, 10, 1, stride=59) and not _valid(452, 10, 1, stride=59)  # bound 452
    assert _valid(450.9, 10, 1, stride=60) and not _valid(451, 10, 1, stride=60)  # bound 451


def test_single_scale_takes_every_box():
    ranges = ((200, 300),)
    assert _valid(1, 1, 0, S=1, ranges=ranges) and _valid(5000, 4000, 0, S=1, ranges=ranges)
    assert not _valid(0, 10, 0, S=1, ranges=ranges)


# ---- 6. greedy cover ------------------------------------------------------------------------------------

def test_greedy_cover_hand_built():
    c0, c1, c2 = (0.0, 0.0, 10.0, 10.0), (5.0, 0.0, 15.0, 10.0), (10.0, 0.0, 20.0, 10.0)
    b0, b1, b2, b3 = (1.0, 1.0, 2.0, 2.0), (6.0, 1.0, 9.0, 2.0), (11.0, 1.0, 14.0, 2.0), (16.0, 1.0, 19.0, 2.0)
    boxes = [tuple(F32(v) for v in b) for b in (b0, b1, b2, b3)]
    # c0 covers {0, 1}, c1 {1, 2}, c2 {2, 3}: every chip starts at 2, so the first in shuffled order wins.
    seen_first = set()
    for item_key in range(30):
        order = sorted(range(3), key=lambda k: nth(item_key, k))
        assert shuffled_order(3, item_key) == order
        picks = greedy_cover([c0, c1, c2], boxes, item_key, 1 - 1e-6, 1)
        first = order[0]
        seen_first.add(first)
        if first == 0:  # then c2 adds {2, 3}
            assert picks == [(c0, [0, 1]), (c2, [2, 3])]
        elif first == 2:  # then c0 adds {0, 1}
            assert picks == [(c2, [2, 3]), (c0, [0, 1])]
        else:  # c1 first; c0 and c2 then add one box each, the earlier in shuffled order first
            if order.index(0) < order.index(2):
                assert picks == [(c1, [1, 2]), (c0, [0]), (c2, [3])]
            else:
                assert picks == [(c1, [1, 2]), (c2, [3]), (c0, [0])]
        # min_count = 2 stops after c1 (nothing adds 2 any more), but not after c0 or c2.
        picks2 = greedy_cover([c0, c1, c2], boxes, item_key, 1 - 1e-6, 2)
        assert len(picks2) == (1 if first == 1 else 2)
        assert greedy_cover([c0, c1, c2], boxes, item_key, 1 - 1e-6, 3) == []
    assert seen_first == {0, 1, 2}


# ---- 7. positive chips ---------------------------------------------------------------------------------------

def test_right_border_box_covered_by_flush_chip():
    out = positive_chips([(640, 480)], [[(600, 100, 640, 140)]], chip_stride=56, **DEFAULTS)
    assert out['stride'] == 56 and out['uncovered'] == [] and out['without_scale'] == []
    (r0, r1) = out['chips']  # size 40: valid at scales 0 and 1, not at 2
    # scale 0: Ws = 1920, last multiple of 56 below 1408 is 1400 ([1400, 1912) misses x2 = 1920), so the
    # flush chip at 1408; the y edges covering [300, 420] are 0, 56, ..., 280.
    assert r0[:4] == (0, 0, 3.0, 3.0) and (r0[4], r0[6]) == (1408.0, 1920.0) and r0[8] == 1
    assert r0[5] in {56.0 * k for k in range(6)} and r0[7] == r0[5] + 512
    # scale 1: Ws = 1067, flush edge 555.
    assert r1[:2] == (0, 1) and r1[2] == float(F32(1067 / 640)) and (r1[4], r1[6]) == (555.0, 1067.0)
    assert r1[8] == 1


def test_float32_rounding_past_the_border_is_clipped():
    # 596 * float32(994 / 596) = 994.00006 > 994: scaled, the border box would stick out of the flush
    # chip; clipped to the scaled image it lies inside it, even with min_iof = 1. Its size 100 is valid
    # at scale 1 only.
    sx = scale_geometry(596, 400, DEFAULTS['scales'], 512)[1][2]
    assert F32(596) * sx > 994
    assert scale_box((496, 100, 596, 200), sx, sx, 994, 667)[2] == 994
    args = ([(596, 400)], [[(496, 100, 596, 200)]])
    for min_iof in (1 - 1e-6, 1.0):
        out = positive_chips(*args, chip_stride=56, min_iof=min_iof, **DEFAULTS)
        assert out['uncovered'] == [] and [(r[1], r[4], r[6]) for r in out['chips']] == [(1, 482.0, 994.0)]


def test_coarsest_scale_is_the_whole_image():
    out = positive_chips([(640, 480)], [[(100, 100, 300, 300)]], chip_stride=56, **DEFAULTS)  # size 200
    assert out['chips'] == [(0, 2, float(F32(0.8)), float(F32(0.8)), 0.0, 0.0, 512.0, 384.0, 1)]


def test_without_scale_crowd_and_image_indices():
    boxes0 = [
        (100, 100, 500, 110),  # 0: size 63 but 400 px long: too long at 0 and 1, too small at 2
        (700, 10, 750, 50),  # 1: outside the image: empty once clipped
        (10, 10, 10, 50),  # 2: empty
        (20, 20, 60, 60),  # 3: crowd: never a target, never listed
        (-10, -10, 50, 50),  # 4: clipped to (0, 0, 50, 50): size 50, valid at scales 0 and 1
    ]
    crowd0 = [False, False, False, True, False]
    boxes1 = [(10, 10, 30, 30)]  # size 20: valid at scale 0 only
    out = positive_chips([(640, 480), (640, 480)], [boxes0, boxes1], [crowd0, None], chip_stride=(56, 60),
                         seed=1, epoch=2, **DEFAULTS)
    assert out['stride'] == 56 + nth(key(1, 2), 0) % 4
    assert out['without_scale'] == [(0, 0), (0, 1), (0, 2)] and out['uncovered'] == []
    assert [(r[0], r[1], r[8]) for r in out['chips']] == [(0, 0, 1), (0, 1, 1), (1, 0, 1)]
    # box 4 was clipped to the image before scaling: the scale-0 chip starts at the origin.
    assert out['chips'][0][4:6] == (0.0, 0.0)
    # Only a crowd box: no chip at all.
    alone = positive_chips([(640, 480)], [[(20, 20, 60, 60)]], [[True]], chip_stride=56, **DEFAULTS)
    assert alone['chips'] == [] and alone['without_scale'] == [] and alone['uncovered'] == []
    with pytest.raises(ValueError):
        positive_chips([(640, 480)], [[(0, 0, math.inf, 10)]], chip_stride=56, **DEFAULTS)


def test_positive_chips_are_deterministic_and_use_the_positive_stream():
    boxes = [[(40 * k, 30 * k, 40 * k + 30, 30 * k + 30) for k in range(12)]]
    a = positive_chips([(640, 480)], boxes, chip_stride=(56, 60), seed=5, epoch=1, **DEFAULTS)
    b = positive_chips([(640, 480)], boxes, chip_stride=(56, 60), seed=5, epoch=1, **DEFAULTS)
    assert a == b
    assert sum(r[8] for r in a['chips'] if r[1] == 0) == 12  # size 30: every box at scale 0
    assert a['uncovered'] == [] and a['without_scale'] == []


# ---- 8. negative chips ----------------------------------------------------------------------------------------

def _cluster(n):
    # n proposals of size 40 (valid at scales 0 and 1), with a score column.
    return [(100 + k, 100, 140 + k, 140, 0.9) for k in range(n)]


def test_negative_thresholds_per_scale():
    sizes = [(640, 480)]
    pos = positive_chips(sizes, [[]], chip_stride=56, **DEFAULTS)
    assert pos['chips'] == []
    # 30 > 25 at scale 0 and 30 > 10 at scale 1: one chip at each; size 40 is too small for scale 2.
    pool = negative_chip_pool(sizes, [_cluster(30)], pos, **DEFAULTS)
    assert [(r[0], r[1], r[8]) for r in pool] == [(0, 0, 30), (0, 1, 30)]
    # 20 is not more than 25 at scale 0 but more than 10 at scale 1.
    pool = negative_chip_pool(sizes, [_cluster(20)], pos, **DEFAULTS)
    assert [(r[0], r[1], r[8]) for r in pool] == [(0, 1, 20)]
    pool = negative_chip_pool(sizes, [_cluster(10)], pos, **DEFAULTS)
    assert pool == []
    # Ground-truth boxes join the pool: 10 proposals + 1 ground truth > 10 at scale 1.
    pool = negative_chip_pool(sizes, [_cluster(10)], pos, [[(100, 100, 140, 140)]], **DEFAULTS)
    assert [(r[1], r[8]) for r in pool] == [(1, 11)]
    # ... but a crowd one does not.
    pool = negative_chip_pool(sizes, [_cluster(10)], pos, [[(100, 100, 140, 140)]], [[True]], **DEFAULTS)
    assert pool == []


def test_proposals_inside_positive_chips_are_not_negatives():
    sizes, gts = [(640, 480)], [[(100, 100, 140, 140)]]
    pos = positive_chips(sizes, gts, chip_stride=56, **DEFAULTS)
    assert [r[1] for r in pos['chips']] == [0, 1]
    assert negative_chip_pool(sizes, [_cluster(30)], pos, gts, **DEFAULTS) == []


def test_clipped_part_decides_coverage():
    # Two scales: 1.0 and 512 / 1024 = 0.5; stride 256 so that c - stride - 1 = 255.
    cfg = dict(scales=(1.0, 512), valid_ranges=((-1, 100), (80, -1)), chip_size=512)
    sizes, gts = [(1024, 512)], [[(10, 10, 50, 50)]]
    pos = positive_chips(sizes, gts, chip_stride=256, **cfg)
    assert pos['chips'] == [(0, 0, 1.0, 1.0, 0.0, 0.0, 512.0, 512.0, 1)]  # xs = 0, 256, 512
    proposals = [[
        (500, 10, 540, 50),  # 12 x 40 px inside the positive chip: a valid box, so covered
        (511, 10, 551, 50),  # 1 x 40 px inside: under 2 scaled px, not valid, so not covered
        (600, 10, 640, 50),  # outside the positive chip
    ]]
    pool = negative_chip_pool(sizes, proposals, pos, gts, neg_thresholds=(0, 0), **cfg)
    # The chip at 256 holds the two uncovered ones (the covered one would have made it 3).
    assert pool == [(0, 0, 1.0, 1.0, 256.0, 0.0, 768.0, 512.0, 2)]


def test_sample_negative_chips():
    pool = [(0, 0, 1.0, 1.0, 56.0 * j, 0.0, 56.0 * j + 512, 512.0, 30) for j in range(5)]
    pool += [(1, 1, 1.0, 1.0, 0.0, 0.0, 512.0, 512.0, 12)]
    out = sample_negative_chips(pool, 3, 2, seed=4, epoch=7)
    stream = key(4, 7, 0, 0, 2)
    expected0 = sorted(sorted(range(5), key=lambda j: nth(stream, j))[:2])
    assert out == [pool[j] for j in expected0] + [pool[5]]
    assert sample_negative_chips(pool, 3, 10, seed=4, epoch=7) == pool
    assert sample_negative_chips(pool, 1, 0) == []
    # Different epochs draw different pairs at least sometimes.
    draws = {tuple(r[4] for r in sample_negative_chips(pool, 1, 2, seed=0, epoch=e)) for e in range(20)}
    assert len(draws) > 1
