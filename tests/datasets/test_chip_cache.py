"""The chip cache shared by the processes of a node: made once, never torn, never trusted when broken."""
import os
import textwrap

import numpy as np
import pytest

from mmdet_sniper.chips import ChipGenerator, cache
from mmdet_sniper.datasets.epoch_chips import EpochChips
from mmdet_sniper.testing.processes import run_together

GENERATOR = dict(scales=(2.0, 1.0, 256), valid_ranges=((-1, 48), (24, 112), (80, -1)), chip_size=256,
                 chip_stride=(28, 32))


def random_images(rng, num_images):
    """Image sizes, boxes and crowd flags of ``num_images`` random images."""
    sizes = np.stack([rng.integers(100, 700, num_images), rng.integers(100, 700, num_images)], 1)
    boxes, crowd = [], []
    for width, height in sizes:
        n = int(rng.poisson(6))
        xy = rng.uniform(0, 1, (n, 2)) * (width, height)
        wh = np.exp(rng.uniform(np.log(4), np.log(300), (n, 2)))
        boxes.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
        crowd.append(rng.uniform(size=n) < 0.05)
    return sizes, boxes, crowd


def epoch_chips_of(inputs, seed, cache_dir):
    sizes, boxes, crowd = inputs
    return EpochChips(ChipGenerator(**GENERATOR), sizes, boxes, crowd, None, seed, cache_dir,
                      [f'image{i}' for i in range(len(sizes))])


def assert_same_table(a, b):
    for name in ('image_index', 'scale_index', 'chips', 'positive', 'box_count', 'uncovered_boxes'):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.stride == b.stride


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'empty', 'another epoch'])
def test_a_broken_cache_file_is_made_again_with_a_warning(tmp_path, rng, monkeypatch, damage):
    inputs, seed = random_images(rng, 40), int(rng.integers(0, 2**31))
    reference = epoch_chips_of(inputs, seed, None).table(1)
    chips = epoch_chips_of(inputs, seed, str(tmp_path))
    chips.table(0), chips.table(1)
    path = chips.cache_path(1)
    good = open(path, 'rb').read()
    broken = {'truncated': good[:len(good) // 2], 'garbage': bytes(rng.integers(0, 256, 500, dtype=np.uint8)),
              'empty': b'', 'another epoch': open(chips.cache_path(0), 'rb').read()}[damage]
    with open(path, 'wb') as f:
        f.write(broken)
    warnings = []
    monkeypatch.setattr(cache, 'print_log',
                        lambda message, **kwargs: warnings.append(message) if 'chip cache' in message else None)
    table = epoch_chips_of(inputs, seed, str(tmp_path)).table(1)
    assert len(warnings) == 1 and f'SNIPER chip cache {path} is unreadable and is made again' in warnings[0]
    assert_same_table(table, reference)
    # The file was replaced by a good one, which the next process reads without a word.
    warnings.clear()
    assert_same_table(epoch_chips_of(inputs, seed, str(tmp_path)).table(1), reference)
    assert warnings == []


CHILD = textwrap.dedent('''
    import os, sys, time
    import numpy as np
    from mmdet_sniper.datasets import epoch_chips
    from tests.datasets.test_chip_cache import epoch_chips_of
    inputs_file, cache_dir, out, go, ready = sys.argv[1:]
    with np.load(inputs_file) as f:
        sizes, flat, counts, flags = f['sizes'], f['boxes'], f['counts'], f['crowd']
    split = np.cumsum(counts)[:-1]
    chips = epoch_chips_of((sizes, np.split(flat, split), np.split(flags, split)), 7, cache_dir)
    messages = []
    epoch_chips.print_log = lambda message, **kwargs: messages.append(message)
    open(ready, 'w').close()
    while not os.path.exists(go):
        time.sleep(0.01)
    table = chips.table(0)
    source = 'generated' if '(generated)' in messages[0] else 'loaded'
    np.savez(out, chips=table.chips, image_index=table.image_index, source=np.array(source))
''')


def test_four_processes_building_at_once_make_the_table_once_and_read_the_same(tmp_path, rng):
    inputs = random_images(rng, 3000)
    sizes, boxes, crowd = inputs
    np.savez(tmp_path / 'inputs.npz', sizes=sizes, boxes=np.concatenate(boxes), crowd=np.concatenate(crowd),
             counts=np.array([len(b) for b in boxes]))
    cache = tmp_path / 'cache'
    # All four start making the table together, once each has imported and read its inputs.
    run_together(CHILD, lambda i: [tmp_path / 'inputs.npz', cache, tmp_path / f'out{i}.npz'], str(tmp_path))
    reference = epoch_chips_of(inputs, 7, None).table(0)
    sources = []
    for i in range(4):
        with np.load(tmp_path / f'out{i}.npz') as out:
            np.testing.assert_array_equal(out['chips'], reference.chips)
            np.testing.assert_array_equal(out['image_index'], reference.image_index)
            sources.append(str(out['source']))
    assert sorted(sources) == ['generated'] + ['loaded'] * 3
    name = os.path.basename(epoch_chips_of(inputs, 7, str(cache)).cache_path(0))
    assert sorted(os.listdir(cache)) == [name, name + '.lock']  # no partial file left
