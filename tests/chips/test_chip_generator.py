"""ChipGenerator against the pure-Python implementation of docs/chip_generation.md, its invariants,
its edge cases and its errors."""
import dataclasses
import importlib.util
import json

import numpy as np
import pytest
import torch

from mmdet_sniper.chips import ChipGenerator, ChipTable, RaggedArray
from mmdet_sniper.testing import random_chip_workload
from . import python_chips

COCO = dict(scales=(3.0, 1.667, 512), valid_ranges=((-1, 80), (32, 150), (120, -1)), chip_size=512)
RESOLUTION = dict(scales=((1400, 2000), (800, 1280), (-1, 512)), valid_ranges=((-1, 80), (32, 150), (120, -1)),
                  chip_size=512)
SMALL = dict(scales=(2.0, 256), valid_ranges=((-1, 48), (24, -1)), chip_size=256)

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason='needs a CUDA GPU'))]


def rows(table: ChipTable):
    return [(int(i), int(s), float(f[0]), float(f[1]), *map(float, c), int(n))
            for i, s, f, c, n in zip(table.image_index, table.scale_index, table.scale_factor, table.chips,
                                     table.box_count)]


def generate_both(workload, settings, chip_stride, seed, epoch, device='cpu', images_per_batch=7):
    """Positive chips, the negative pool and the sampled negatives from the generator and from the
    pure-Python implementation."""
    generator = ChipGenerator(**settings, chip_stride=chip_stride, device=device, images_per_batch=images_per_batch)
    positive = generator.generate_positive(workload.image_sizes, workload.gt_boxes, workload.gt_crowd, seed=seed,
                                           epoch=epoch)
    pool = generator.generate_negative(workload.image_sizes, workload.proposals, positive, workload.gt_boxes,
                                       workload.gt_crowd, seed=seed, epoch=epoch)
    sampled = generator.sample_negative(pool, seed=seed, epoch=epoch)

    sizes = [tuple(s) for s in workload.image_sizes.tolist()]
    gt = [b.tolist() for b in workload.gt_boxes]
    crowd = [c.tolist() for c in workload.gt_crowd]
    expected_positive = python_chips.positive_chips(sizes, gt, crowd, **settings, chip_stride=chip_stride, seed=seed,
                                                    epoch=epoch)
    expected_pool = python_chips.negative_chip_pool(sizes, [p.tolist() for p in workload.proposals],
                                                    expected_positive, gt, crowd, **settings, seed=seed, epoch=epoch)
    expected_sampled = python_chips.sample_negative_chips(expected_pool, len(sizes), 2, seed=seed, epoch=epoch)
    return (positive, pool, sampled), (expected_positive, expected_pool, expected_sampled)


class TestAgreementWithPythonImplementation:

    @pytest.mark.parametrize('settings,image_size,chip_stride', [
        (COCO, ((60, 900), (60, 900)), (56, 60)),
        (RESOLUTION, ((200, 1000), (150, 800)), 48),
        (SMALL, ((40, 500), (40, 500)), (20, 30)),
    ])
    def test_same_chips_on_random_datasets(self, rng, settings, image_size, chip_stride):
        workload = random_chip_workload(25, rng, image_size=image_size, boxes_per_image=10,
                                        side_range=(4, 300), proposals_per_image=150, crowd_fraction=0.15)
        seed, epoch = int(rng.integers(1000)), int(rng.integers(5))
        (positive, pool, sampled), (expected_positive, expected_pool, expected_sampled) = generate_both(
            workload, settings, chip_stride, seed, epoch)
        assert positive.stride == expected_positive['stride']
        assert rows(positive) == expected_positive['chips']
        assert positive.uncovered_boxes.tolist() == [list(b) for b in expected_positive['uncovered']]
        assert positive.boxes_without_scale.tolist() == [list(b) for b in expected_positive['without_scale']]
        assert rows(pool) == expected_pool
        assert rows(sampled) == expected_sampled
        assert positive.positive.all() and not pool.positive.any()

    def test_same_chips_from_ragged_arrays(self, rng):
        # What SniperDataset hands over: every image's boxes in one flat array, images without any among them.
        workload = random_chip_workload(25, rng, image_size=((60, 900), (60, 900)), boxes_per_image=10,
                                        side_range=(4, 300), proposals_per_image=150, crowd_fraction=0.15)
        for i in rng.choice(25, 4, replace=False):
            workload.gt_boxes[i], workload.gt_crowd[i] = np.zeros((0, 4), np.float32), np.zeros(0, bool)
            workload.proposals[i] = np.zeros((0, 5), np.float32)
        packed = dataclasses.replace(workload, gt_boxes=RaggedArray.from_list(workload.gt_boxes, np.float32, (4,)),
                                     gt_crowd=RaggedArray.from_list(workload.gt_crowd, bool),
                                     proposals=RaggedArray.from_list(workload.proposals, np.float32, (5,)))
        seed, epoch = int(rng.integers(1000)), int(rng.integers(5))
        (positive, pool, sampled), (expected_positive, expected_pool, expected_sampled) = generate_both(
            packed, COCO, (56, 60), seed, epoch)
        assert rows(positive) == expected_positive['chips'] and len(positive)
        assert positive.uncovered_boxes.tolist() == [list(b) for b in expected_positive['uncovered']]
        assert rows(pool) == expected_pool and len(pool)
        assert rows(sampled) == expected_sampled

    @pytest.mark.parametrize('device', DEVICES)
    def test_dense_negatives_at_every_scale(self, rng, device):
        # Many proposals in few places, so that negative chips appear at every scale.
        workload = random_chip_workload(6, rng, image_size=(700, 500), boxes_per_image=3, side_range=(10, 200),
                                        proposals_per_image=160)
        for proposals in workload.proposals:
            proposals[:, :4] = proposals[:, :4] * 0.3 + 50
        (positive, pool, sampled), (expected_positive, expected_pool, expected_sampled) = generate_both(
            workload, COCO, (56, 60), 1, 2, device=device)
        assert rows(positive) == expected_positive['chips']
        assert rows(pool) == expected_pool and len(expected_pool) > 0
        assert rows(sampled) == expected_sampled


class TestInvariants:

    def test_every_valid_box_is_inside_a_positive_chip_of_a_valid_scale(self, rng):
        workload = random_chip_workload(40, rng, image_size=((50, 1500), (50, 1500)), boxes_per_image=15,
                                        side_range=(2, 700), proposals_per_image=0, crowd_fraction=0.1)
        generator = ChipGenerator()
        table = generator.generate_positive(workload.image_sizes, workload.gt_boxes, workload.gt_crowd, seed=5)
        scaled_sizes, factors = generator.pyramid.geometry(workload.image_sizes)
        uncovered = {tuple(b) for b in table.uncovered_boxes.tolist()}
        without_scale = {tuple(b) for b in table.boxes_without_scale.tolist()}
        assert not uncovered, 'with the default settings every valid box fits some candidate chip'
        for image, (boxes, crowd) in enumerate(zip(workload.gt_boxes, workload.gt_crowd)):
            width, height = workload.image_sizes[image]
            clipped = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
            for index, box in enumerate(clipped):
                w, h = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
                valid_scales = [s for s in range(3) if generator.pyramid.valid(
                    np.array([w]), np.array([h]), s, factors[image, s][None], table.stride)[0]]
                if crowd[index]:
                    assert (image, index) not in without_scale
                    continue
                if not valid_scales:
                    assert (image, index) in without_scale
                    continue
                holders = [
                    (s, chip) for i, s, chip in zip(table.image_index, table.scale_index, table.chips)
                    if i == image and s in valid_scales
                    and np.all(chip[:2] <= box[:2] * factors[image, s] + 1e-3)
                    and np.all(box[2:] * factors[image, s] <= chip[2:] + 1e-3)]
                assert holders, f'box {index} of image {image} ({box}) is inside no positive chip'
        # Chips lie inside their scaled image and are chip_size wide unless the image is smaller.
        size = scaled_sizes[table.image_index, table.scale_index]
        assert np.all(table.chips[:, :2] >= 0) and np.all(table.chips[:, 2:] <= size)
        assert np.array_equal(table.chips[:, 2:] - table.chips[:, :2], np.minimum(size, 512))
        assert np.array_equal(table.scale_factor, factors[table.image_index, table.scale_index])

    def test_negative_chips_hold_more_than_the_threshold(self, rng):
        workload = random_chip_workload(30, rng, proposals_per_image=300)
        generator = ChipGenerator(neg_thresholds=(12, 5))
        positive = generator.generate_positive(workload.image_sizes, workload.gt_boxes, seed=1)
        pool = generator.generate_negative(workload.image_sizes, workload.proposals, positive, seed=1)
        assert len(pool) > 0
        assert np.all(pool.box_count[pool.scale_index == 0] > 12)
        assert np.all(pool.box_count[pool.scale_index > 0] > 5)
        sampled = generator.sample_negative(pool, seed=1, epoch=3)
        per_image = np.bincount(sampled.image_index, minlength=30)
        available = np.bincount(pool.image_index, minlength=30)
        assert np.array_equal(per_image, np.minimum(available, 2))


class TestEdgeCases:

    def test_image_smaller_than_a_chip_gets_whole_image_chips(self):
        generator = ChipGenerator(chip_stride=56)
        table = generator.generate_positive([[100, 60]], [[[10, 10, 30, 30], [0, 0, 100, 60]]])
        # 100 x 60 is 300 x 180 at scale 0 and 167 x 100 at scale 1: smaller than a chip. The 20 px box
        # is valid at scale 0 only; the whole-image box (size 77.5) at scales 0 and 1.
        assert rows(table) == [(0, 0, 3.0, 3.0, 0, 0, 300, 180, 2),
                               (0, 1, float(np.float32(1.67)), float(np.float32(100 / 60)), 0, 0, 167, 100, 1)]

    def test_images_without_boxes_get_no_positive_chip(self):
        generator = ChipGenerator()
        table = generator.generate_positive([[640, 480], [300, 200]], [np.zeros((0, 4)), []])
        assert len(table) == 0 and table.num_images == 2
        assert table.summary()['images_without_chips'] == 2

    def test_box_on_the_right_and_bottom_border_is_covered_by_flush_chips(self):
        generator = ChipGenerator(chip_stride=56)
        table = generator.generate_positive([[640, 480]], [[[620, 460, 640, 480]]])
        # 20 px box, size 20: valid at the finest scale only, where the image is 1920 x 1440.
        assert rows(table) == [(0, 0, 3.0, 3.0, 1408, 928, 1920, 1440, 1)]

    def test_crowd_boxes_are_never_targets(self):
        generator = ChipGenerator()
        table = generator.generate_positive([[640, 480]], [[[10, 10, 30, 30], [300, 300, 310, 310]]],
                                            [[True, True]])
        assert len(table) == 0 and len(table.uncovered_boxes) == 0 and len(table.boxes_without_scale) == 0

    def test_boxes_outside_the_image_and_degenerate_boxes_are_reported(self):
        generator = ChipGenerator()
        table = generator.generate_positive(
            [[640, 480]], [[[700, 10, 720, 30], [50, 50, 50, 80], [60, 60, 40, 90], [10, 10, 30, 30]]])
        assert table.boxes_without_scale.tolist() == [[0, 0], [0, 1], [0, 2]]
        assert int(table.box_count.sum()) == 1

    def test_boxes_no_chip_can_hold_are_reported_as_uncovered(self):
        # The validity rule guarantees a window for every valid box; loosen its chip size so that a box
        # larger than a chip counts as valid at the finest scale, and the cover must report it.
        generator = ChipGenerator(chip_stride=56)
        generator.pyramid.chip_size = 4096
        # Box 1 (600 x 10, size 77) is then valid at scales 0 and 1 but wider than a chip at both.
        table = generator.generate_positive([[1000, 800]], [[[10, 10, 30, 30], [100, 100, 700, 110]]])
        assert table.uncovered_boxes.tolist() == [[0, 1]] and table.boxes_without_scale.tolist() == []
        assert table.scale_index.tolist() == [0] and table.box_count.tolist() == [1]

    def test_determinism_and_seed_dependence(self, rng):
        workload = random_chip_workload(20, rng, image_size=(1200, 900), boxes_per_image=12, side_range=(8, 60))
        generator = ChipGenerator()
        first = generator.generate_positive(workload.image_sizes, workload.gt_boxes, seed=3, epoch=1)
        again = generator.generate_positive(workload.image_sizes, workload.gt_boxes, seed=3, epoch=1)
        other = generator.generate_positive(workload.image_sizes, workload.gt_boxes, seed=4, epoch=1)
        later = generator.generate_positive(workload.image_sizes, workload.gt_boxes, seed=3, epoch=2)
        assert rows(first) == rows(again)
        assert rows(first) != rows(other) and rows(first) != rows(later)
        # The batch size changes nothing.
        batched = ChipGenerator(images_per_batch=3).generate_positive(workload.image_sizes, workload.gt_boxes,
                                                                      seed=3, epoch=1)
        assert rows(batched) == rows(first)


class TestWorkers:

    def test_forked_workers_make_the_tables_of_one_process(self, rng):
        # 20 batches of 2 images: enough for 2 workers of 4 batches or more each.
        workload = random_chip_workload(40, rng, image_size=((60, 900), (60, 900)), boxes_per_image=10,
                                        side_range=(4, 300), proposals_per_image=150, crowd_fraction=0.15)
        seed, epoch = int(rng.integers(1000)), int(rng.integers(5))
        tables = []
        for workers in (1, 2, 3):
            generator = ChipGenerator(images_per_batch=2, workers=workers)
            positive = generator.generate_positive(workload.image_sizes, workload.gt_boxes, workload.gt_crowd,
                                                   seed=seed, epoch=epoch)
            pool = generator.generate_negative(workload.image_sizes, workload.proposals, positive, workload.gt_boxes,
                                               workload.gt_crowd, seed=seed, epoch=epoch)
            tables.append((rows(positive), positive.uncovered_boxes.tolist(), positive.boxes_without_scale.tolist(),
                           rows(pool)))
        assert tables[0] == tables[1] == tables[2]
        assert tables[0][0] and tables[0][3]
        (_, pool, _), (_, expected_pool, _) = generate_both(workload, COCO, (56, 60), seed, epoch)
        assert tables[0][3] == rows(pool) == expected_pool

    @pytest.mark.parametrize('workers', [1, 2])
    def test_an_epoch_in_one_pass_is_positive_and_drawn_negative_chips(self, rng, workers):
        workload = random_chip_workload(40, rng, image_size=((60, 900), (60, 900)), boxes_per_image=10,
                                        side_range=(4, 300), proposals_per_image=150, crowd_fraction=0.15)
        for i in rng.choice(40, 5, replace=False):  # images without proposals or without boxes
            workload.proposals[i] = np.zeros((0, 5), np.float32)
        seed, epoch = int(rng.integers(1000)), int(rng.integers(5))
        generator = ChipGenerator(images_per_batch=2, workers=workers, neg_chips_per_image=1)
        positive = generator.generate_positive(workload.image_sizes, workload.gt_boxes, workload.gt_crowd, seed=seed,
                                               epoch=epoch)
        pool = generator.generate_negative(workload.image_sizes, workload.proposals, positive, workload.gt_boxes,
                                           workload.gt_crowd, seed=seed, epoch=epoch)
        expected = ChipTable.concat([positive, generator.sample_negative(pool, seed=seed, epoch=epoch)])
        table = generator.generate_epoch(workload.image_sizes, workload.gt_boxes, workload.gt_crowd,
                                         workload.proposals, seed=seed, epoch=epoch)
        assert rows(table) == rows(expected) and table.positive.tolist() == expected.positive.tolist()
        # One drawn from each image's pool.
        assert len(pool) and (~table.positive).sum() == np.count_nonzero(np.bincount(pool.image_index))
        for name in ('uncovered_boxes', 'boxes_without_scale', 'image_sizes', 'scaled_sizes'):
            np.testing.assert_array_equal(getattr(table, name), getattr(expected, name))
        assert (table.stride, table.settings) == (expected.stride, expected.settings)
        # Without proposals: the positive chips alone.
        alone = generator.generate_epoch(workload.image_sizes, workload.gt_boxes, workload.gt_crowd, seed=seed,
                                         epoch=epoch)
        assert rows(alone) == rows(positive) and alone.positive.all()

    def test_an_error_in_a_worker_names_its_image(self, rng):
        workload = random_chip_workload(40, rng, proposals_per_image=20)
        workload.proposals[33][5, 2] = np.nan
        generator = ChipGenerator(images_per_batch=2, workers=2)
        positive = generator.generate_positive(workload.image_sizes, workload.gt_boxes, seed=1)
        with pytest.raises(ValueError, match=r'proposals_list\[33\] \(image 33\) has a non-finite coordinate in box 5'):
            generator.generate_negative(workload.image_sizes, workload.proposals, positive, seed=1)


class TestBadInput:

    @pytest.mark.parametrize('image_sizes,boxes,match', [
        ([[640, 480]], [[[0, 0, float('nan'), 10]]], r'gt_boxes_list\[0\] \(image 0\) has a non-finite coordinate'),
        ([[640, 480], [10, 10]], [[], [[1, 2, 3]]], r'gt_boxes_list\[1\] must have shape \[N, 4\]'),
        ([[640, 480]], [], 'gt_boxes_list must hold one entry per image'),
        ([[640, 0]], [[]], r'image_sizes must be whole pixels >= 1; image 0 has \[640, 0\]'),
        ([640, 480], [[]], r'image_sizes must have shape \[num_images, 2\]'),
    ])
    def test_bad_ground_truth_is_named(self, image_sizes, boxes, match):
        with pytest.raises(ValueError, match=match):
            ChipGenerator().generate_positive(image_sizes, boxes)

    def test_bad_proposals_and_crowd_flags_are_named(self):
        generator = ChipGenerator()
        positive = generator.generate_positive([[640, 480]], [[[0, 0, 10, 10]]])
        with pytest.raises(ValueError, match=r'proposals_list\[0\] must have shape \[N, 4..5\]'):
            generator.generate_negative([[640, 480]], [np.zeros((3, 6))], positive)
        with pytest.raises(ValueError, match=r'gt_crowd_list\[0\] must hold one flag per box'):
            generator.generate_positive([[640, 480]], [[[0, 0, 10, 10]]], [[True, False]])
        with pytest.raises(ValueError, match='positive must be the chip table of the same images'):
            generator.generate_negative([[641, 480]], [np.zeros((3, 5))], positive)

    def test_bad_ragged_arrays_are_named(self):
        generator = ChipGenerator()
        sizes, boxes = [[640, 480], [320, 240]], RaggedArray(np.tile([[0, 0, 10, 10]], (3, 1)), [0, 1, 3])
        positive = generator.generate_positive(sizes, boxes)
        with pytest.raises(ValueError, match=r'proposals_list.flat must have shape \[T, 4..5\], got \(4, 6\)'):
            generator.generate_negative(sizes, RaggedArray(np.zeros((4, 6)), [0, 2, 4]), positive)
        with pytest.raises(ValueError, match=r'gt_boxes_list.flat must have shape \[T, 4\], got \(3,\)'):
            generator.generate_positive(sizes, RaggedArray(np.zeros(3), [0, 1, 3]))
        # One flag too many for image 1, or flags of the wrong shape, name the image.
        with pytest.raises(ValueError, match=r'gt_crowd_list\[1\] must hold one flag per box of gt_boxes_list\[1\] '
                                             r'\(2\), got shape \(3,\)'):
            generator.generate_positive(sizes, boxes, RaggedArray(np.zeros(4, bool), [0, 1, 4]))
        with pytest.raises(ValueError, match=r'gt_crowd_list\[0\] must hold one flag per box'):
            generator.generate_positive(sizes, boxes, RaggedArray(np.zeros((3, 1), bool), [0, 1, 3]))

    @pytest.mark.parametrize('kwargs,match', [
        (dict(scales=(3.0, 1.667, 600)), 'must be <= chip_size=512'),
        (dict(scales=((1400, 2000), (800, 1280), (-1, -1))), 'at least one bound > 0'),
        (dict(scales=((1400, 2000), (800, 1280), (600, -1))), 'must bound the longest side'),
        (dict(scales=(3.0, (800, 1280), 512)), 'all numbers or all'),
        (dict(valid_ranges=((-1, 80), (32, 150))), 'one \\(lo, hi\\) pair per scale'),
        (dict(chip_stride=(60, 56)), 'chip_stride must be'),
        (dict(chip_stride=0), 'chip_stride must be'),
        (dict(min_iof=0), r'min_iof must be in \(0, 1\]'),
        (dict(neg_chips_per_image=-1), 'neg_chips_per_image must be >= 0'),
        (dict(workers=0), 'workers must be an int >= 1 or None'),
        (dict(workers=1.5), 'workers must be an int >= 1 or None'),
    ])
    def test_bad_settings_are_named(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            ChipGenerator(**kwargs)


@pytest.mark.skipif(importlib.util.find_spec('mmengine') is None,
                    reason='tables are saved and loaded through mmengine.fileio')
class TestChipTable:

    def test_save_load_roundtrip_and_summary(self, tmp_path, rng):
        workload = random_chip_workload(10, rng)
        generator = ChipGenerator()
        positive = generator.generate_positive(workload.image_sizes, workload.gt_boxes, seed=2)
        pool = generator.generate_negative(workload.image_sizes, workload.proposals, positive, seed=2)
        table = ChipTable.concat([positive, generator.sample_negative(pool, seed=2)])
        assert np.all(np.diff(table.image_index) >= 0)
        path = str(tmp_path / 'chips.npz')
        table.save(path)
        loaded = ChipTable.load(path)
        assert rows(loaded) == rows(table) and loaded.stride == table.stride
        assert np.array_equal(loaded.positive, table.positive)
        assert loaded.settings == json.loads(json.dumps(table.settings)) and loaded.settings['seed'] == 2
        summary = loaded.summary()
        assert summary['positive'] == int(table.positive.sum()) and summary['chips'] == len(table)
        assert 'chip pixels / full 3-scale pyramid pixels' in loaded.format_summary()

    def test_summary_hand_computed(self):
        generator = ChipGenerator(chip_stride=56)
        table = generator.generate_positive([[100, 60]], [[[10, 10, 30, 30]]])
        # One 300 x 180 chip at scale 0; pyramid: 300 x 180 + 167 x 100 + 512 x 307.
        summary = table.summary()
        assert summary['pixel_ratio'] == pytest.approx(300 * 180 / (300 * 180 + 167 * 100 + 512 * 307))
        assert summary['per_scale'][0]['positive_per_image'] == 1.0 and summary['chips_per_image'] == 1.0

    def test_load_rejects_other_files(self, tmp_path):
        path = tmp_path / 'other.npz'
        np.savez(path, x=np.zeros(3))
        with pytest.raises(ValueError, match='is not a chip table'):
            ChipTable.load(str(path))
