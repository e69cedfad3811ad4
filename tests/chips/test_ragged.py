"""RaggedArray: per-image rows as one flat array, against the list of arrays it packs."""
import numpy as np
import pytest

from mmdet_sniper.chips import RaggedArray
from mmdet_sniper.compat import zip_strict


def random_rows(rng, num_images, row_shape=(4,)):
    counts = rng.poisson(3, num_images)
    counts[rng.choice(num_images, num_images // 4, replace=False)] = 0  # images without rows
    return [rng.normal(size=(int(n),) + row_shape).astype(np.float32) for n in counts]


@pytest.mark.parametrize('row_shape, dtype', [((4,), np.float32), ((), bool)])
def test_holds_each_images_rows_in_order(rng, row_shape, dtype):
    arrays = [a.astype(dtype) for a in random_rows(rng, 30, row_shape)]
    ragged = RaggedArray.from_list(arrays, dtype, row_shape)
    assert len(ragged) == 30 and ragged.flat.dtype == dtype and ragged.flat.shape[1:] == row_shape
    assert ragged.counts.tolist() == [len(a) for a in arrays]
    for i, array in enumerate(arrays):
        np.testing.assert_array_equal(ragged[i], array)
        np.testing.assert_array_equal(ragged[i - 30], array)
    for mine, array in zip_strict(ragged, arrays):
        np.testing.assert_array_equal(mine, array)
    assert ragged.nbytes == sum(a.nbytes for a in arrays) + 31 * 8


def test_a_range_of_images_shares_the_rows(rng):
    arrays = random_rows(rng, 12)
    ragged = RaggedArray.from_list(arrays, np.float32, (4,))
    for start, stop in ((0, 12), (3, 7), (5, 5), (11, 12), (0, 0)):
        part = ragged.images(start, stop)
        assert len(part) == stop - start
        assert part.flat.size == 0 or np.shares_memory(part.flat, ragged.flat)
        for mine, array in zip_strict(part, arrays[start:stop]):
            np.testing.assert_array_equal(mine, array)
    for start, stop in ((-1, 3), (4, 3), (0, 13)):
        with pytest.raises(IndexError, match=f'images {start}..{stop - 1} out of range for 12 images'):
            ragged.images(start, stop)


def test_empty_and_shapeless_entries():
    # An image without boxes may be given as a bare [] (no columns); no image at all is no rows.
    ragged = RaggedArray.from_list([[], np.zeros((0, 4)), [[1, 2, 3, 4]]], np.float32, (4,))
    assert ragged.counts.tolist() == [0, 0, 1] and ragged[0].shape == (0, 4)
    empty = RaggedArray.from_list([], np.float32, (4,))
    assert len(empty) == 0 and empty.flat.shape == (0, 4) and list(empty) == []


def test_bad_offsets_and_indices_are_errors():
    flat = np.zeros((5, 4), np.float32)
    for offsets in ([0, 3, 2, 5], [1, 5], [0, 4], [], [[0, 5]]):
        with pytest.raises(ValueError, match='offsets must be non-decreasing from 0 to the 5 rows of flat'):
            RaggedArray(flat, offsets)
    ragged = RaggedArray(flat, [0, 2, 5])
    for image in (2, -3):
        with pytest.raises(IndexError, match=f'image {image} out of range for 2 images'):
            ragged[image]
