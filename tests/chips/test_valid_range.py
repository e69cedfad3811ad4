"""ValidRange against membership written here with plain Python comparisons, on random sizes and on
the edges (each bound exactly and one float step either side, 0, infinity, NaN); its parsing and
errors; and ScalePyramid's use of it."""
import math

import numpy as np
import pytest
import torch

from mmdet_sniper.chips import ScalePyramid, ValidRange

PAIRS = [(-1, -1), (-1, 80), (32, 150), (120, -1), (0, 20.5), (32.25, 32.5), (-1, 0)]


def reference_contains(sizes, pair):
    lo, hi = pair
    return [not math.isnan(s) and (lo == -1 or s >= lo) and (hi == -1 or s < hi) for s in sizes]


def reference_contains_test_area(areas, pair):
    lo, hi = pair
    return [not math.isnan(a) and (lo == -1 or a > lo * lo) and (hi == -1 or a <= hi * hi) for a in areas]


def values_around(bounds, rng):
    """Random float64 values up to past the largest bound, each bound and its float neighbours, and
    0, infinity and NaN."""
    edges = [0.0, math.inf, math.nan]
    for bound in bounds:
        edges += [bound, float(np.nextafter(bound, -np.inf)), float(np.nextafter(bound, np.inf))]
    top = 2 * max(bounds, default=100.0) + 1
    return np.concatenate([rng.uniform(0, top, 500), edges])


def bounds_of(pair, square=False):
    return [float(v) * float(v) if square else float(v) for v in pair if v != -1]


def as_kind(values, kind):
    return torch.from_numpy(values) if kind == 'torch' else values


@pytest.mark.parametrize('kind', ['numpy', 'torch'])
@pytest.mark.parametrize('pair', PAIRS)
class TestMembership:

    def test_contains_is_lo_inclusive_hi_exclusive(self, rng, kind, pair):
        sizes = values_around(bounds_of(pair), rng)

        keep = ValidRange.from_pair(pair).contains(as_kind(sizes, kind))

        assert keep.tolist() == reference_contains(sizes.tolist(), pair)

    def test_contains_test_area_is_lo_exclusive_hi_inclusive_on_squared_bounds(self, rng, kind, pair):
        areas = values_around(bounds_of(pair, square=True), rng)

        keep = ValidRange.from_pair(pair).contains_test_area(as_kind(areas, kind))

        assert keep.tolist() == reference_contains_test_area(areas.tolist(), pair)

    def test_empty_input(self, kind, pair):
        empty = as_kind(np.zeros(0), kind)
        valid = ValidRange.from_pair(pair)
        assert valid.contains(empty).shape == valid.contains_test_area(empty).shape == (0,)


def test_the_two_rules_differ_exactly_at_the_bounds():
    valid = ValidRange.from_pair((32, 150))
    sizes = np.array([32.0, 150.0, 100.0])
    assert valid.contains(sizes).tolist() == [True, False, True]
    assert valid.contains_test_area(sizes ** 2).tolist() == [False, True, True]


def test_nan_is_in_no_range():
    for pair in PAIRS:
        valid = ValidRange.from_pair(pair)
        assert not valid.contains(np.array([math.nan])).any()
        assert not valid.contains_test_area(torch.tensor([math.nan], dtype=torch.float64)).any()


class TestFromPair:

    @pytest.mark.parametrize('pair, lo, hi', [
        ((-1, 80), None, 80), ([32, 150], 32, 150), ((120, -1), 120, None), ((-1, -1), None, None),
        ((0, 20.5), 0, 20.5), (np.array([32, 64]), 32, 64), ((np.float32(0.5), np.int64(3)), 0.5, 3),
        ((-1.0, 7.0), None, 7.0)])
    def test_parses_minus_one_as_unbounded(self, pair, lo, hi):
        valid = ValidRange.from_pair(pair)

        assert (valid.lo, valid.hi) == (lo, hi)
        # Plain Python numbers, so that to_pair's output is as plain as the configs' pairs.
        assert all(type(v) in (int, float) for v in (valid.lo, valid.hi) if v is not None)
        assert valid.to_pair() == tuple(-1 if v is None else v for v in (lo, hi))

    def test_to_pair_round_trips(self):
        for pair in PAIRS:
            assert ValidRange.from_pair(pair).to_pair() == pair
            assert type(ValidRange.from_pair(pair).to_pair()[0]) is type(pair[0])

    @pytest.mark.parametrize('pair, message', [
        ((32,), 'must be a \\(lo, hi\\) pair'), ((1, 2, 3), 'must be a \\(lo, hi\\) pair'),
        ('ab', 'must be a \\(lo, hi\\) pair'), (5, 'must be a \\(lo, hi\\) pair'),
        (None, 'must be a \\(lo, hi\\) pair'),
        ((-2, 90), 'lo must be -1 \\(unbounded\\) or a finite size >= 0'),
        ((None, 90), 'lo must be -1'), ((True, 90), 'lo must be -1'), ((math.nan, 90), 'lo must be -1'),
        ((32, -5), 'hi must be -1'), ((32, math.inf), 'hi must be -1'), ((32, '90'), 'hi must be -1'),
        ((90, 32), 'must have lo < hi'), ((32, 32), 'must have lo < hi'), ((0, 0), 'must have lo < hi')])
    def test_bad_pairs_name_the_argument(self, pair, message):
        with pytest.raises(ValueError, match=f'^valid_ranges\\[2\\] {message}'):
            ValidRange.from_pair(pair, 'valid_ranges[2]')

    def test_is_frozen(self):
        valid = ValidRange.from_pair((32, 150))
        with pytest.raises(AttributeError):
            valid.lo = 10


class TestScalePyramid:

    def test_the_ends_of_the_pyramid_are_open(self):
        pyramid = ScalePyramid((3.0, 1.667, 512), ((24, 80), (32, 150), (120, 400)), 512)

        assert [pyramid.range_at(s) for s in range(3)] == [ValidRange(None, 80), ValidRange(32, 150),
                                                           ValidRange(120, None)]
        assert [pyramid.effective_range(s) for s in range(3)] == [(-1, 80), (32, 150), (120, -1)]
        # The configured pairs are kept as given, for the settings that name a chip cache.
        assert pyramid.valid_ranges == [(24, 80), (32, 150), (120, 400)]

    def test_a_single_scale_takes_every_size(self):
        pyramid = ScalePyramid((512,), ((32, 150),), 512)
        assert pyramid.range_at(0) == ValidRange(None, None) and pyramid.effective_range(0) == (-1, -1)

    def test_valid_applies_the_range_of_the_scale(self):
        # A 1x pyramid with a chip big enough that only the range decides, at sizes on and around its bounds.
        pyramid = ScalePyramid((1.0, 1.0, 64), ((-1, 40), (20, 60), (50, -1)), 2048)
        sides = np.array([19.0, 20.0, 39.0, 40.0, 49.0, 50.0, 59.0, 60.0, 61.0])
        factors = np.ones((len(sides), 2), np.float32)
        for scale, pair in enumerate([(-1, 40), (20, 60), (50, -1)]):
            expected = reference_contains(sides.tolist(), pair)
            assert pyramid.valid(sides, sides, scale, factors, stride=32).tolist() == expected

    @pytest.mark.parametrize('valid_ranges, message', [
        (((-1, 80), (150, 32), (120, -1)), 'valid_ranges\\[1\\] must have lo < hi'),
        (((-1, 80), (32, 150), (-3, -1)), 'valid_ranges\\[2\\] lo must be -1'),
        (((-1, 80), (32,), (120, -1)), 'one \\(lo, hi\\) pair per scale')])
    def test_bad_ranges_name_the_scale(self, valid_ranges, message):
        with pytest.raises(ValueError, match=message):
            ScalePyramid((3.0, 1.667, 512), valid_ranges, 512)
