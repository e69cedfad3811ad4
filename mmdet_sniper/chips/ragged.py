"""Per-image rows of varying count held as one flat array and offsets."""
from typing import Iterator, Optional, Sequence

import numpy as np


class RaggedArray(Sequence):
    """The rows of each image as one flat array: image ``i``'s rows are
    ``flat[offsets[i]:offsets[i + 1]]``.

    A dataset keeps its boxes this way rather than as a list of small arrays: a data loader worker
    that reads a list touches the reference count of every element, which copies the pages they lie
    on into the worker (copy on write); a few large arrays stay shared. ``flat`` may be a read-only
    memory map, which the ranks of a node then share through the page cache.

    Indexing gives a view of one image's rows; ``len`` is the number of images.

    Args:
        flat: ``[T, ...]`` the rows of every image, image by image.
        offsets: int64 ``[I + 1]``, non-decreasing, from 0 to ``T``.
        digest: a name of the contents where one is known (the key of the cache they were read from),
            which a digest of the contents may use instead of reading a gigabyte.
    """

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, digest: Optional[str] = None):
        offsets = np.asarray(offsets, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(flat) \
                or (np.diff(offsets) < 0).any():
            raise ValueError(f'offsets must be non-decreasing from 0 to the {len(flat)} rows of flat, got '
                             f'{len(offsets)} offsets from {offsets[:1].tolist()} to {offsets[-1:].tolist()}')
        self.flat, self.offsets, self.digest = flat, offsets, digest

    @classmethod
    def from_list(cls, arrays: Sequence, dtype, row_shape: tuple = ()) -> 'RaggedArray':
        """Packs per-image arrays (each ``[N_i, *row_shape]``, or empty) of ``dtype``."""
        counts = np.fromiter((len(a) if np.size(a) else 0 for a in arrays), dtype=np.int64, count=len(arrays))
        rows = [np.asarray(a, dtype=dtype).reshape((-1,) + row_shape) for a in arrays if np.size(a)]
        flat = np.concatenate(rows) if rows else np.zeros((0,) + row_shape, dtype)
        return cls(flat, np.concatenate([[0], np.cumsum(counts)]))

    def images(self, start: int, stop: int) -> 'RaggedArray':
        """Images ``start .. stop - 1`` (``0 <= start <= stop <= len``), sharing this array's rows."""
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f'images {start}..{stop - 1} out of range for {len(self)} images')
        offsets = self.offsets[start:stop + 1]
        return RaggedArray(self.flat[offsets[0]:offsets[-1]], offsets - offsets[0])

    @property
    def counts(self) -> np.ndarray:
        """int64 ``[I]``: the rows of each image."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, image: int) -> np.ndarray:
        if not -len(self) <= image < len(self):
            raise IndexError(f'image {image} out of range for {len(self)} images')
        image %= len(self)
        return self.flat[self.offsets[image]:self.offsets[image + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.flat[start:stop] for start, stop in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist()))

    @property
    def nbytes(self) -> int:
        return self.flat.nbytes + self.offsets.nbytes
