"""SplitMix64 in numpy: the counter-based generator behind every random choice of chip generation.

Output ``k`` of a generator seeded with ``key`` is a pure function of ``(key, k)``
(``csrc/splitmix64.h`` is the C++ twin), so shuffles need no generator state, vectorise over any
number of images, and agree bit for bit between the kernels, this glue and the pure-Python
reference. docs/chip_generation.md, section 3.
"""
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    # SplitMix64 is defined modulo 2**64: the wrap-around is the point, not an overflow to report
    # (numpy warns on 0-d values).
    with np.errstate(over='ignore'):
        z = (z ^ (z >> np.uint64(30))) * _MUL1
        z = (z ^ (z >> np.uint64(27))) * _MUL2
        return z ^ (z >> np.uint64(31))


def _as_uint64(values) -> np.ndarray:
    # Two's complement, so an int64 key (as torch stores it) maps back to the same 64 bits.
    array = np.asarray(values)
    if array.dtype == np.uint64:
        return array
    return np.asarray(array, dtype=np.int64).astype(np.uint64)


def nth(keys, k) -> np.ndarray:
    """Output ``k`` (0-based) of SplitMix64 seeded with ``keys``; both broadcast. uint64 array."""
    with np.errstate(over='ignore'):
        state = _as_uint64(keys) + (_as_uint64(k) + np.uint64(1)) * _GOLDEN
    return _mix(state)


def derive_key(*values) -> np.ndarray:
    """The key of a stream named by a sequence of integers (each broadcastable): uint64 array."""
    key = np.zeros((), dtype=np.uint64)
    for value in values:
        key = nth(key ^ _as_uint64(value), 0)
    return key
