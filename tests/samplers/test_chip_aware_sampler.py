import math

import numpy as np
import pytest
from mmdet.registry import DATA_SAMPLERS

from mmdet_sniper.chips import ChipTable
from mmdet_sniper.datasets import ChipKey
from mmdet_sniper.samplers import ChipAwareSampler, chip_aware_sampler

WORLD_SIZES = [1, 2, 3, 4]
SIZES = [0, 1, 5, 17, 100]


def ragged_image_index(rng, n):
    """Image index of ``n`` chip rows ordered by image, a random number of chips (maybe none) per image."""
    return np.sort(rng.integers(0, max(1, n // 3), size=n)).astype(np.int64)


def table_of(image_index):
    """A chip table with the given image of each row; row ``r``'s chip is ``(r, 0, r + 1, 1)``."""
    n = len(image_index)
    rows = np.arange(n, dtype=np.float32)
    num_images = int(image_index.max(initial=-1)) + 1
    return ChipTable(image_index=np.asarray(image_index, np.int64), scale_index=np.zeros(n, np.int64),
                     scale_factor=np.ones((n, 2), np.float32),
                     chips=np.stack([rows, np.zeros(n), rows + 1, np.ones(n)], axis=1).astype(np.float32),
                     positive=np.ones(n, bool), box_count=np.ones(n, np.int64),
                     image_sizes=np.full((num_images, 2), 600, np.int64),
                     scaled_sizes=np.full((num_images, 1, 2), 600, np.int64), stride=32)


class FakeChips:
    """The ``EpochChips`` interface the sampler uses; ``image_index_of_epoch(epoch)`` gives the image of
    each row of the epoch's table."""

    def __init__(self, image_index_of_epoch):
        self._image_index_of_epoch = image_index_of_epoch
        self.epoch_calls = []

    def table(self, epoch):
        self.epoch_calls.append(epoch)
        return table_of(self._image_index_of_epoch(epoch))


class FakeChipDataset:

    def __init__(self, image_index_of_epoch):
        self.chips = FakeChips(image_index_of_epoch)


def fixed_dataset(image_index):
    return FakeChipDataset(lambda epoch: image_index)


def make_sampler(monkeypatch, dataset, rank=0, world_size=1, **kwargs):
    monkeypatch.setattr(chip_aware_sampler, 'get_dist_info', lambda: (rank, world_size))
    kwargs.setdefault('seed', 7)
    return ChipAwareSampler(dataset, **kwargs)


def rows_of(sampler):
    keys = list(sampler)
    assert all(isinstance(key, ChipKey) and key.epoch == sampler.epoch for key in keys)
    return np.array([key.chip[0] for key in keys], dtype=np.int64)


def global_order(monkeypatch, dataset, epoch=0, **kwargs):
    sampler = make_sampler(monkeypatch, dataset, **kwargs)
    sampler.set_epoch(epoch)
    return rows_of(sampler)


@pytest.mark.parametrize('group_by_image', [False, True])
@pytest.mark.parametrize('n', SIZES)
@pytest.mark.parametrize('world_size', WORLD_SIZES)
def test_shards_are_contiguous_equal_blocks_of_one_padded_order(monkeypatch, rng, world_size, n,
                                                                group_by_image):
    dataset = fixed_dataset(ragged_image_index(rng, n))
    epoch = int(rng.integers(0, 1000))
    order = global_order(monkeypatch, dataset, epoch, group_by_image=group_by_image)
    assert sorted(order) == list(range(n))

    block = math.ceil(n / world_size)
    shards = []
    for rank in range(world_size):
        sampler = make_sampler(monkeypatch, dataset, rank, world_size, group_by_image=group_by_image)
        sampler.set_epoch(epoch)
        shard = rows_of(sampler)
        assert len(shard) == len(sampler) == sampler.num_samples == block
        shards.append(shard)
    joined = np.concatenate(shards)

    assert np.array_equal(joined[:n], order)
    # Padding wraps around the order, as often as needed (n=1 on 4 ranks repeats it thrice).
    assert np.array_equal(joined[n:], order[np.arange(n, block * world_size) % max(n, 1)])


@pytest.mark.parametrize('group_by_image', [False, True])
def test_same_seed_and_epoch_give_the_same_order(monkeypatch, rng, group_by_image):
    dataset = fixed_dataset(ragged_image_index(rng, 100))
    seed, epoch = (int(v) for v in rng.integers(0, 2**31, size=2))
    first = global_order(monkeypatch, dataset, epoch, seed=seed, group_by_image=group_by_image)
    second = global_order(monkeypatch, dataset, epoch, seed=seed, group_by_image=group_by_image)
    assert np.array_equal(first, second)
    other_epoch = global_order(monkeypatch, dataset, epoch + 1, seed=seed, group_by_image=group_by_image)
    other_seed = global_order(monkeypatch, dataset, epoch, seed=seed + 1, group_by_image=group_by_image)
    assert not np.array_equal(first, other_epoch)
    assert not np.array_equal(first, other_seed)


@pytest.mark.parametrize('group_by_image', [False, True])
def test_without_shuffle_the_order_is_table_order(monkeypatch, rng, group_by_image):
    dataset = fixed_dataset(ragged_image_index(rng, 100))
    for epoch in (0, 3):
        order = global_order(monkeypatch, dataset, epoch, shuffle=False, group_by_image=group_by_image)
        assert np.array_equal(order, np.arange(100))


def test_group_by_image_keeps_an_image_rows_adjacent_in_table_order(monkeypatch, rng):
    image_index = ragged_image_index(rng, 100)
    dataset = fixed_dataset(image_index)
    image_orders = []
    for epoch in (0, 1):
        order = global_order(monkeypatch, dataset, epoch, group_by_image=True)
        images = image_index[order]
        starts = np.flatnonzero(np.r_[True, images[1:] != images[:-1]])
        # One run per image: each image's rows are adjacent.
        assert len(starts) == len(np.unique(image_index))
        for start, end in zip(starts, np.r_[starts[1:], len(order)]):
            assert np.array_equal(order[start:end], np.flatnonzero(image_index == images[start]))
        image_orders.append(images[starts])
    assert not np.array_equal(image_orders[0], np.unique(image_index))
    assert not np.array_equal(image_orders[0], image_orders[1])


@pytest.mark.parametrize('group_by_image', [False, True])
@pytest.mark.parametrize('n', SIZES)
@pytest.mark.parametrize('world_size', WORLD_SIZES)
def test_samples_done_skip_the_head_of_this_ranks_keys_for_that_epoch(monkeypatch, rng, world_size, n,
                                                                      group_by_image):
    dataset = fixed_dataset(ragged_image_index(rng, n))
    epoch = int(rng.integers(1, 1000))
    rank = int(rng.integers(0, world_size))
    whole = make_sampler(monkeypatch, dataset, rank, world_size, group_by_image=group_by_image)
    whole.set_epoch(epoch + 1)
    next_epoch = list(whole)
    whole.set_epoch(epoch)
    expected = list(whole)
    samples_done = int(rng.integers(0, len(expected) + 1))

    resumed = make_sampler(monkeypatch, dataset, rank, world_size, group_by_image=group_by_image)
    resumed.set_epoch(epoch, samples_done)
    assert list(resumed) == expected[samples_done:]
    # len() counts the whole epoch, so that a resumed epoch's batches keep their numbers.
    assert len(resumed) == len(expected)
    resumed.set_epoch(epoch + 1)
    assert list(resumed) == next_epoch
    resumed.set_epoch(epoch)
    assert list(resumed) == expected


def test_set_epoch_reads_the_epochs_table_and_len_follows_it(monkeypatch, rng):
    base = int(rng.integers(0, 2**31))

    def image_index_of_epoch(epoch):
        epoch_rng = np.random.default_rng((base, epoch))
        return ragged_image_index(epoch_rng, int(epoch_rng.integers(0, 60)))

    dataset = FakeChipDataset(image_index_of_epoch)
    sampler = make_sampler(monkeypatch, dataset, 2, 3)
    # len() must be right before the first set_epoch, so construction selects epoch 0.
    assert dataset.chips.epoch_calls == [0]
    for epoch in rng.permutation(10):
        sampler.set_epoch(int(epoch))
        assert dataset.chips.epoch_calls[-1] == epoch
        n = len(image_index_of_epoch(epoch))
        keys = list(sampler)
        assert len(sampler) == len(keys) == math.ceil(n / 3)
        assert all(key.epoch == epoch for key in keys)


def test_seed_none_takes_the_synced_seed(monkeypatch, rng):
    seed = int(rng.integers(0, 2**31))
    monkeypatch.setattr(chip_aware_sampler, 'sync_random_seed', lambda: seed)
    dataset = fixed_dataset(ragged_image_index(rng, 17))
    assert make_sampler(monkeypatch, dataset, seed=None).seed == seed


def test_registered_in_mmdet_data_samplers(rng):
    dataset = fixed_dataset(ragged_image_index(rng, 5))
    sampler = DATA_SAMPLERS.build(dict(type='ChipAwareSampler', dataset=dataset, seed=3))
    assert isinstance(sampler, ChipAwareSampler)
    assert sampler.seed == 3


@pytest.mark.parametrize('kwargs, message', [
    (dict(shuffle='yes'), 'shuffle'),
    (dict(group_by_image=1), 'group_by_image'),
    (dict(seed=-1), 'seed'),
    (dict(seed=1.5), 'seed'),
])
def test_bad_constructor_arguments_are_named(monkeypatch, rng, kwargs, message):
    dataset = fixed_dataset(ragged_image_index(rng, 5))
    with pytest.raises((TypeError, ValueError), match=message):
        make_sampler(monkeypatch, dataset, **kwargs)


def test_a_dataset_without_chips_is_named(monkeypatch):
    with pytest.raises(TypeError, match=r'dataset must be a SniperDataset \(its chips.table\(epoch\).*got list'):
        make_sampler(monkeypatch, list(range(5)))


def test_bad_epoch_and_samples_done_are_named(monkeypatch, rng):
    dataset = fixed_dataset(ragged_image_index(rng, 17))
    sampler = make_sampler(monkeypatch, dataset, 0, 2)
    with pytest.raises(ValueError, match='epoch must be a non-negative int, got -1'):
        sampler.set_epoch(-1)
    for samples_done in (-1, 2.0, 10):
        with pytest.raises(ValueError, match=r'samples_done must be an int in 0..9 \(the samples of this rank in '
                                             rf'epoch 1\), got {samples_done}'):
            sampler.set_epoch(1, samples_done)
    # A refused call changes nothing.
    assert sampler.epoch == 0 and len(list(sampler)) == len(sampler) == 9
