"""load_proposals: the file's proposals after NMS, cached once per node and mapped by every process."""
import os
import pickle
import textwrap
import time

import numpy as np
import pytest

from mmdet_sniper.chips import cache
from mmdet_sniper.chips import proposals as proposals_module
from mmdet_sniper.chips.proposals import load_proposals
from mmdet_sniper.testing.processes import run_together


def greedy_nms(boxes, iou):
    """Greedy NMS by descending score (stable), computed box by box; the kept boxes as load_proposals
    holds the files of these tests, whose coordinates are below 2048 px: float16."""
    def overlap(a, b):
        w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
        h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
        return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)

    kept = []
    for j in np.argsort(-boxes[:, 4], kind='stable'):
        if all(overlap(boxes[j], boxes[k]) <= iou for k in kept):
            kept.append(j)
    return boxes[kept, :4].astype(np.float16)


def write_proposals(path, rng, image_ids):
    """Random proposals with a near-duplicate of each box (two test scales), one image without any."""
    proposals = {}
    for image_id in image_ids:
        xy = rng.uniform(0, 300, (20, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 80, (20, 2))], 1)
        twins = np.concatenate([boxes, boxes + rng.uniform(0, 3, (20, 4))])
        proposals[image_id] = np.concatenate([twins, rng.uniform(0, 1, (40, 1))], 1).astype(np.float32)
    proposals[image_ids[0]] = np.zeros((0, 5), np.float32)
    with open(path, 'wb') as f:
        pickle.dump(proposals, f)
    return proposals


@pytest.fixture
def logged(monkeypatch):
    messages = []
    for module in (proposals_module, cache):
        monkeypatch.setattr(module, 'print_log', lambda message, **kwargs: messages.append(message))
    return messages


def test_cached_proposals_are_the_files_after_nms_and_read_from_the_cache(tmp_path, rng, monkeypatch, logged):
    image_ids = [int(i) for i in rng.permutation(1000)[:12]]
    raw = write_proposals(tmp_path / 'proposals.pkl', rng, image_ids)
    order = image_ids[::-1]  # the dataset's order, not the file's
    expected = [greedy_nms(raw[i], 0.7) if len(raw[i]) else np.zeros((0, 4), np.float16) for i in order]
    in_memory = load_proposals(str(tmp_path / 'proposals.pkl'), order, 0.7)
    cache = tmp_path / 'cache'
    cached = load_proposals(str(tmp_path / 'proposals.pkl'), order, 0.7, str(cache))
    assert isinstance(cached.flat, np.memmap) and not cached.flat.flags.writeable
    assert cached.flat.dtype == in_memory.flat.dtype == np.float16
    # Named by the cache key, which a chip cache's key uses instead of reading the map.
    assert cached.digest == os.path.basename(cached.flat.filename.rsplit(os.sep, 1)[0]) and in_memory.digest is None
    assert len(in_memory) == len(cached) == len(order)
    for mine, theirs, want in zip(in_memory, cached, expected):
        np.testing.assert_array_equal(mine, want)
        np.testing.assert_array_equal(theirs, want)
    assert sum(len(e) for e in expected) < sum(len(raw[i]) for i in order)  # NMS pooled the twins
    assert sum('cached in' in m for m in logged) == 1
    # Later calls read the cache, not the file.
    monkeypatch.setattr('mmengine.fileio.load', lambda *args, **kwargs: pytest.fail('the file was read again'))
    again = load_proposals(str(tmp_path / 'proposals.pkl'), order, 0.7, str(cache))
    np.testing.assert_array_equal(again.flat, cached.flat)
    np.testing.assert_array_equal(again.offsets, cached.offsets)
    assert len(os.listdir(cache)) == 2  # the cached folder and its lock, no partial folder left


def test_another_file_threshold_or_order_is_another_cache_entry(tmp_path, rng):
    image_ids = list(range(1, 9))
    path, cache = tmp_path / 'proposals.pkl', str(tmp_path / 'cache')
    raw = write_proposals(path, rng, image_ids)
    first = load_proposals(str(path), image_ids, 0.7, cache)
    np.testing.assert_array_equal(first[3], greedy_nms(raw[4], 0.7))
    np.testing.assert_array_equal(load_proposals(str(path), image_ids, 0.5, cache)[3], greedy_nms(raw[4], 0.5))
    np.testing.assert_array_equal(load_proposals(str(path), image_ids[::-1], 0.7, cache)[4], greedy_nms(raw[4], 0.7))
    unpooled = load_proposals(str(path), image_ids, None, cache)
    np.testing.assert_array_equal(unpooled[3], raw[4][:, :4].astype(np.float16))
    time.sleep(0.01)  # a new modification time, whatever the file system's resolution
    raw = write_proposals(path, rng, image_ids)
    np.testing.assert_array_equal(load_proposals(str(path), image_ids, 0.7, cache)[3], greedy_nms(raw[4], 0.7))


@pytest.mark.parametrize('largest', [640.0, 2047.0, 2048.0, 5000.0])
def test_boxes_are_half_precision_below_2048_px_and_full_beyond(tmp_path, rng, largest):
    image_ids = list(range(6))
    proposals = {}
    for i in image_ids:
        xy = rng.uniform(0, largest / 2, (50, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, largest / 2, (50, 2))], 1)
        proposals[i] = np.concatenate([boxes, rng.uniform(0, 1, (50, 1))], 1).astype(np.float32)
    proposals[5][0, 2] = largest
    path = tmp_path / 'proposals.pkl'
    path.write_bytes(pickle.dumps(proposals))
    for cache_dir in (None, str(tmp_path / 'cache')):
        loaded = load_proposals(str(path), image_ids, None, cache_dir)
        flat = np.concatenate([proposals[i][:, :4] for i in image_ids])
        if largest < 2048:
            assert loaded.flat.dtype == np.float16 and loaded.flat.nbytes == flat.nbytes // 2
            # Rounded to the nearest float16: at most half its spacing, 0.25 px below 1024 px.
            error = np.abs(loaded.flat.astype(np.float64) - flat)
            assert (error <= np.where(flat < 1024, 0.25, 0.5)).all() and error.max() > 0
        else:
            assert loaded.flat.dtype == np.float32
            np.testing.assert_array_equal(loaded.flat, flat)


@pytest.mark.parametrize('damage', ['truncated boxes', 'no offsets', 'garbage offsets'])
def test_a_broken_cache_is_made_again_with_a_warning(tmp_path, rng, logged, damage):
    image_ids = list(range(10, 20))
    path, cache = tmp_path / 'proposals.pkl', tmp_path / 'cache'
    write_proposals(path, rng, image_ids)
    reference = load_proposals(str(path), image_ids, 0.7)
    load_proposals(str(path), image_ids, 0.7, str(cache))
    folder = next(p for p in cache.iterdir() if p.is_dir())
    boxes, offsets = folder / 'boxes.npy', folder / 'offsets.npy'
    if damage == 'truncated boxes':
        boxes.write_bytes(boxes.read_bytes()[:boxes.stat().st_size // 2])
    elif damage == 'no offsets':
        offsets.unlink()
    else:
        offsets.write_bytes(bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    logged.clear()
    rebuilt = load_proposals(str(path), image_ids, 0.7, str(cache))
    warnings = [m for m in logged if 'unreadable' in m]
    assert len(warnings) == 1 and f'SNIPER proposals cache {folder} is unreadable and is made again' in warnings[0]
    np.testing.assert_array_equal(rebuilt.flat, reference.flat)
    np.testing.assert_array_equal(rebuilt.offsets, reference.offsets)
    logged.clear()
    load_proposals(str(path), image_ids, 0.7, str(cache))
    assert logged == []


def test_bad_thresholds_and_files_are_errors(tmp_path, rng):
    for iou in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match=f'nms_iou must be an IoU in \\(0, 1\\] or None, got {iou}'):
            load_proposals('unused.pkl', [1], iou)
    path = tmp_path / 'proposals.pkl'
    write_proposals(path, rng, [1, 2, 3])
    with pytest.raises(ValueError, match=r'does not match the annotation file: 1 images without proposals \(e.g. '
                                         r'\[4\]\), 1 unknown image ids \(e.g. \[1\]\)'):
        load_proposals(str(path), [2, 3, 4], 0.7, str(tmp_path / 'cache'))
    assert not (tmp_path / 'cache').exists() or not any(p.is_dir() for p in (tmp_path / 'cache').iterdir())


CHILD = textwrap.dedent('''
    import os, sys, time
    import numpy as np
    from mmdet_sniper.chips import proposals
    path, cache, out, go, ready = sys.argv[1:]
    read = []
    original = proposals._read
    proposals._read = lambda *args: read.append(1) or original(*args)
    proposals.print_log = lambda *args, **kwargs: None
    open(ready, 'w').close()
    while not os.path.exists(go):
        time.sleep(0.01)
    loaded = proposals.load_proposals(path, list(range(1, 401)), 0.7, cache)
    np.savez(out, flat=np.asarray(loaded.flat), offsets=loaded.offsets, read=len(read))
''')


def test_four_processes_at_once_read_the_file_once_and_share_one_result(tmp_path, rng):
    path, cache = tmp_path / 'proposals.pkl', tmp_path / 'cache'
    write_proposals(path, rng, list(range(1, 401)))
    run_together(CHILD, lambda i: [path, cache, tmp_path / f'out{i}.npz'], str(tmp_path))
    reference = load_proposals(str(path), list(range(1, 401)), 0.7)
    reads = []
    for i in range(4):
        with np.load(tmp_path / f'out{i}.npz') as out:
            np.testing.assert_array_equal(out['flat'], reference.flat)
            np.testing.assert_array_equal(out['offsets'], reference.offsets)
            reads.append(int(out['read']))
    assert sorted(reads) == [0, 0, 0, 1]
    assert len(os.listdir(cache)) == 2
