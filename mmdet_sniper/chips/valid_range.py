"""A scale's valid range of object sizes, parsed once, with SNIPER's two membership rules.

Configs and metainfo (``chip_valid_range``, ``valid_range``) carry a range as a plain ``(lo, hi)``
pair in original-image pixels of ``sqrt(w * h)``, ``-1`` leaving a side unbounded; code that applies
one parses it here, where ``-1`` becomes ``None``.
"""
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Optional, Tuple, TypeVar

Values = TypeVar('Values')  # a number, a numpy array or a torch tensor


@dataclass(frozen=True)
class ValidRange:
    """``lo`` and ``hi`` in original-image pixels; None: that side is unbounded. Make one with
    :meth:`from_pair`, which checks it.

    Training and test close opposite ends, and both are the authors': training selects
    ``lo <= size < hi`` (:meth:`contains`; their ``data_workers.py``, ``chip_worker.chip_extractor``),
    the test keeps ``lo**2 < area <= hi**2`` (:meth:`contains_test_area`; their ``lib/inference.py``,
    ``Tester.aggregate``, which compares the area with the squared bounds, so this does too). One
    difference: their test takes a bound of 0 as no bound, here 0 bounds (``lo = 0``: ``area > 0``).

    A NaN size or area is in no range, bounded or not: it is not a size. Both methods compare in the
    dtype of their input; pass float64 where a value may lie within float32 rounding of a bound.
    """
    lo: Optional[float]
    hi: Optional[float]

    @classmethod
    def from_pair(cls, pair, name: str = 'valid_range') -> 'ValidRange':
        """Parse a ``(lo, hi)`` pair (tuple, list or array) whose sides are ``-1`` (unbounded) or
        finite sizes ``>= 0`` with ``lo < hi`` when both are bounded; ``name`` is the argument that
        errors name."""
        values = None if isinstance(pair, (str, bytes)) else _as_tuple(pair)
        if values is None or len(values) != 2:
            raise ValueError(f'{name} must be a (lo, hi) pair in original pixels, got {pair!r}')
        for side, value in zip(('lo', 'hi'), values):
            if (isinstance(value, bool) or not isinstance(value, Real)
                    or not (value == -1 or 0 <= value < float('inf'))):
                raise ValueError(f'{name} {side} must be -1 (unbounded) or a finite size >= 0 in original '
                                 f'pixels, got {name}={values!r}')
        lo, hi = (None if v == -1 else int(v) if isinstance(v, Integral) else float(v) for v in values)
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f'{name} must have lo < hi when both are bounded, got {name}={values!r}')
        return cls(lo, hi)

    def to_pair(self) -> Tuple[float, float]:
        """The ``(lo, hi)`` pair, ``-1`` for an unbounded side, as configs and metainfo hold it."""
        return (-1 if self.lo is None else self.lo), (-1 if self.hi is None else self.hi)

    def contains(self, sizes: Values) -> Values:
        """Training's rule: ``lo <= size < hi``, for sizes ``sqrt(w * h)``; bool like ``sizes``."""
        keep = sizes == sizes  # False only at NaN
        if self.lo is not None:
            keep = keep & (sizes >= self.lo)
        if self.hi is not None:
            keep = keep & (sizes < self.hi)
        return keep

    def contains_test_area(self, areas: Values) -> Values:
        """The test's rule: ``lo**2 < area <= hi**2``, for areas ``w * h``; bool like ``areas``."""
        keep = areas == areas  # False only at NaN
        if self.lo is not None:
            keep = keep & (areas > self.lo * self.lo)
        if self.hi is not None:
            keep = keep & (areas <= self.hi * self.hi)
        return keep


def _as_tuple(pair) -> Optional[tuple]:
    try:
        return tuple(pair)
    except TypeError:
        return None
