import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from mmdet.utils import register_all_modules

import mmdet_sniper  # noqa: F401  (registers the datasets and transforms)
from mmdet_sniper.chips import ChipGenerator, ChipTable
from mmdet_sniper.datasets import ChipKey, SniperDataset, epoch_chips, sniper_dataset
from mmdet_sniper.testing.synthetic_coco import CLASSES, write_synthetic_coco

register_all_modules()  # the default scope 'mmdet', which the wrapped dataset's pipeline is built in

SETTINGS = dict(scales=(2.0, 1.0, 256), valid_ranges=((-1, 48), (24, 112), (80, -1)), chip_size=256,
                chip_stride=(28, 32))
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True), dict(type='CropChip'),
            dict(type='PackDetInputs', meta_keys=('img_path', 'img_shape', 'scale_factor', 'chip', 'chip_valid_range'))]


def coco_config(root, pipeline=PIPELINE, **kwargs):
    return dict(type='CocoDataset', data_root=str(root), ann_file='annotations.json', data_prefix=dict(img='images/'),
                metainfo=dict(classes=CLASSES), pipeline=pipeline, **kwargs)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    write_synthetic_coco(str(root), 5, seed=3, image_size=((150, 400), (120, 300)), size_range=(6, 150))
    return root


def build(root, tmp_path, **kwargs):
    return SniperDataset(coco_config(root), **{'cache_dir': str(tmp_path / 'cache'), **SETTINGS, **kwargs})


def keys_of(dataset, epoch=0):
    """Every chip of ``epoch`` as a key, in table order."""
    table = dataset.chips.table(epoch)
    return [ChipKey.of(table, row, epoch) for row in range(len(table))]


def coco_inputs(root):
    coco = json.loads((root / 'annotations.json').read_text())
    sizes = np.array([[im['width'], im['height']] for im in coco['images']])
    boxes = [np.array([[*a['bbox'][:2], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
                       for a in coco['annotations'] if a['image_id'] == im['id']], np.float32).reshape(-1, 4)
             for im in coco['images']]
    crowd = [np.array([a['iscrowd'] for a in coco['annotations'] if a['image_id'] == im['id']], bool)
             for im in coco['images']]
    return coco, sizes, boxes, crowd


def test_items_are_the_generators_chips_of_the_epoch(coco_root, tmp_path):
    dataset = build(coco_root, tmp_path, seed=5)
    _, sizes, boxes, crowd = coco_inputs(coco_root)
    generator = ChipGenerator(**SETTINGS)
    for epoch in (3, 0):
        expected = generator.generate_positive(sizes, boxes, crowd, seed=5, epoch=epoch)
        keys = keys_of(dataset, epoch)
        assert len(keys) == len(expected) > 0
        np.testing.assert_array_equal([k.chip for k in keys], expected.chips)
        np.testing.assert_array_equal([k.image_index for k in keys], expected.image_index)
        np.testing.assert_array_equal([k.scale_index for k in keys], expected.scale_index)
        assert {k.stride for k in keys} == {expected.stride} and {k.epoch for k in keys} == {epoch}


def test_an_item_is_the_chip_cropped_with_its_targets(coco_root, tmp_path):
    dataset = build(coco_root, tmp_path)
    coco, _, boxes, _ = coco_inputs(coco_root)
    keys = keys_of(dataset)
    for key in keys:
        info = dataset.get_data_info(key)
        assert info['img_path'].endswith(coco['images'][key.image_index]['file_name'])
        # Validity by the chip's scale: the size rule of the valid range, checked directly.
        lo, hi = info['chip_valid_range']
        size = np.sqrt(np.prod(boxes[key.image_index][:, 2:] - boxes[key.image_index][:, :2], axis=1))
        in_range = ((lo < 0) | (size >= lo)) & ((hi < 0) | (size < hi))
        assert not (info['chip_instance_valid'] & ~in_range).any()
        sample = dataset[key]['data_samples']
        assert sample.chip.tolist() == list(key.chip)
        # The chip's pixels, unpadded (an image smaller than a chip gives a smaller crop).
        x1, y1, x2, y2 = key.chip
        assert sample.img_shape == (round(y2 - y1), round(x2 - x1)) and max(sample.img_shape) <= 256
        assert tuple(sample.scale_factor) == pytest.approx(key.scale_factor)
        # Targets lie inside the chip.
        targets = sample.gt_instances.bboxes.tensor.numpy()
        assert ((targets >= 0) & (targets <= 256)).all()
    assert sum(len(dataset[key]['data_samples'].gt_instances) for key in keys) > 0


def test_a_copy_for_a_worker_loads_any_chip_and_carries_no_table(coco_root, tmp_path):
    dataset = build(coco_root, tmp_path)
    keys = keys_of(dataset, 2)
    # What a data loader worker receives holds no copy of the table the sampler asked for.
    shipped = pickle.dumps(dataset)
    assert dataset.chips.table(2).chips.tobytes() not in shipped
    copy = pickle.loads(shipped)
    for key in keys[:3]:
        assert copy[key]['data_samples'].chip.tolist() == dataset[key]['data_samples'].chip.tolist()


def test_chips_are_cached_so_a_restart_does_not_recompute(coco_root, tmp_path, monkeypatch):
    first = build(coco_root, tmp_path)
    first_keys = keys_of(first, 1)
    assert not os.path.exists(first.chips.cache_path(0)) and os.path.exists(first.chips.cache_path(1))

    def no_generation(*args, **kwargs):
        raise AssertionError('chips were generated again')

    monkeypatch.setattr(ChipGenerator, 'generate_epoch', no_generation)
    second = build(coco_root, tmp_path)
    assert keys_of(second, 1) == first_keys
    # Other settings are other chips: they are generated, not loaded.
    with pytest.raises(AssertionError, match='generated again'):
        build(coco_root, tmp_path, chip_stride=40).chips.table(1)


def test_epochs_redraw_the_stride_and_log_their_statistics_once(coco_root, tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(epoch_chips, 'print_log', lambda message, **kwargs: logged.append(message))
    dataset = build(coco_root, tmp_path, cache_dir=None)
    strides = {dataset.chips.table(epoch).stride for epoch in range(8)}
    assert len(strides) > 1 and strides <= set(range(28, 32))
    assert len(logged) == 8 and all('positive/image' in m and 'SNIPER chips of epoch' in m for m in logged)
    # Made again (only the last table is kept in memory), an epoch is not reported again, and is the same.
    assert keys_of(dataset, 3) == keys_of(dataset, 3) and len(logged) == 8


def test_negative_chips_come_from_the_proposals_file(coco_root, tmp_path):
    coco, sizes, _, _ = coco_inputs(coco_root)
    rng = np.random.default_rng(0)
    proposals = {}
    for image, (w, h) in zip(coco['images'], sizes):
        # A dense cluster of small proposals in one corner, far from most objects.
        xy = rng.uniform([0, 0], [w * 0.2, h * 0.2], (60, 2))
        proposals[image['id']] = np.concatenate([xy, xy + 12, np.ones((60, 1))], axis=1).astype(np.float32)
    path = tmp_path / 'proposals.pkl'
    path.write_bytes(pickle.dumps(proposals))
    dataset = build(coco_root, tmp_path, proposals_file=str(path), neg_chips_per_image=1)
    negatives = [key for key in keys_of(dataset) if not key.positive]
    assert negatives and len({k.image_index for k in negatives}) == len(negatives)  # one per image at most
    sample = dataset[negatives[0]]['data_samples']
    assert sample.img_shape == (256, 256)
    # A proposals file of another dataset is refused with the ids that do not match.
    path.write_bytes(pickle.dumps({999: proposals[1]}))
    with pytest.raises(ValueError, match=r'does not match the annotation file.*\[999\]'):
        build(coco_root, tmp_path, proposals_file=str(path))


def test_unheld_boxes_are_reported_with_their_image(tmp_path, monkeypatch):
    root = tmp_path / 'coco'
    write_synthetic_coco(str(root), 1, seed=0, image_size=(300, 200), objects_per_image=(1, 1), size_range=(20, 20))
    coco = json.loads((root / 'annotations.json').read_text())
    # A box valid at no scale: 35 px, between the ranges of the two scales.
    coco['annotations'].append(dict(id=7, image_id=1, category_id=1, bbox=[10, 10, 35, 35], area=1225, iscrowd=0))
    (root / 'annotations.json').write_text(json.dumps(coco))
    logged = []
    monkeypatch.setattr(epoch_chips, 'print_log', lambda message, **kwargs: logged.append(message))
    SniperDataset(coco_config(root), scales=(2.0, 1.0), valid_ranges=((-1, 30), (40, 100)), chip_size=256,
                  chip_stride=32, cache_dir=None).chips.table(0)
    assert any('1 ground-truth boxes are valid at no scale' in m and '000000.jpg box 1' in m for m in logged)


def test_an_image_without_boxes_has_no_positive_chip_and_trains_as_background(tmp_path):
    root = tmp_path / 'coco'
    write_synthetic_coco(str(root), 2, seed=1, image_size=(300, 200))
    coco = json.loads((root / 'annotations.json').read_text())
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] == 1]
    (root / 'annotations.json').write_text(json.dumps(coco))
    dataset = SniperDataset(coco_config(root, filter_cfg=dict(filter_empty_gt=False)), cache_dir=None, **SETTINGS)
    assert set(dataset.chips.table(0).image_index.tolist()) == {0}
    # A chip of the empty image (as a negative chip would be) loads with no targets and no ignores.
    key = ChipKey(epoch=0, image_index=1, scale_index=2, chip=(0.0, 0.0, 256.0, 171.0),
                  scale_factor=(256 / 300, 171 / 200), positive=False, stride=28)
    sample = dataset[key]['data_samples']
    assert len(sample.gt_instances) == 0 and len(sample.ignored_instances) == 0


def test_bad_input_gives_errors_that_name_the_image(coco_root, tmp_path):
    empty = tmp_path / 'empty'
    os.makedirs(empty / 'images')
    (empty / 'annotations.json').write_text(json.dumps(dict(images=[], annotations=[], categories=[
        dict(id=1, name='square')])))
    with pytest.raises(ValueError, match=r'holds no images \(annotation file .*annotations.json'):
        SniperDataset(coco_config(empty), cache_dir=None, **SETTINGS)

    dataset = build(coco_root, tmp_path)
    key = keys_of(dataset)[0]
    outside = key._replace(chip=(1000.0, 0.0, 1256.0, 256.0))
    with pytest.raises(ValueError, match=r'000000\.jpg must lie inside the image') as error:
        dataset[outside]
    assert any('image index 0' in note for note in error.value.__notes__)

    with pytest.raises(ValueError, match='proposals_nms_iou must be an IoU'):
        SniperDataset(coco_config(coco_root), cache_dir=None, proposals_nms_iou=1.5, **SETTINGS)
    with pytest.raises(ValueError, match="missing_images must be 'error' or 'skip', got 'ignore'"):
        build(coco_root, tmp_path, missing_images='ignore')
    with pytest.raises(ValueError, match=r'chip_workers must be an int >= 1 or None \(one per CPU, at most 8\), got 0'):
        build(coco_root, tmp_path, chip_workers=0)

    with pytest.raises(TypeError, match='indexed by a ChipKey, got str'):
        dataset['a']
    # A row number names no chip without its epoch's table.
    with pytest.raises(TypeError, match=r'got int \(a row number means nothing without an epoch'):
        dataset[0]
    table = dataset.chips.table(0)
    with pytest.raises(IndexError, match=f'chip row {len(table)} out of range for the {len(table)} chips of epoch 0'):
        ChipKey.of(table, len(table), 0)


def test_cache_files_are_chip_tables(coco_root, tmp_path):
    dataset = build(coco_root, tmp_path)
    made = dataset.chips.table(0)
    table = ChipTable.load(dataset.chips.cache_path(0))
    assert len(table) == len(made) > 0 and table.settings['chip_size'] == 256
    np.testing.assert_array_equal(table.chips, made.chips)


def test_proposals_are_pooled_by_nms_on_load_and_can_be_switched_off(coco_root, tmp_path, rng):
    coco, sizes, _, _ = coco_inputs(coco_root)
    proposals = {}
    for image, (w, h) in zip(coco['images'], sizes):
        xy = rng.uniform([0, 0], [w * 0.5, h * 0.5], (40, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (40, 2))], axis=1)
        # Each box twice, shifted by a pixel: what two test scales give for one object.
        twins = np.concatenate([boxes, boxes + 1])
        proposals[image['id']] = np.concatenate([twins, rng.uniform(0.1, 1, (80, 1))], axis=1).astype(np.float32)
    proposals[coco['images'][0]['id']] = np.zeros((0, 5), np.float32)  # an image without proposals
    path = tmp_path / 'proposals.pkl'
    path.write_bytes(pickle.dumps(proposals))
    dataset = build(coco_root, tmp_path, proposals_file=str(path), cache_dir=None)
    for i, image in enumerate(coco['images']):
        raw, pooled = proposals[image['id']], dataset.proposals[i]
        # Greedy NMS at 0.7, computed here box by box.
        order, kept = np.argsort(-raw[:, 4], kind='stable'), []
        for j in order:
            if all(iou(raw[j, :4], raw[k, :4]) <= 0.7 for k in kept):
                kept.append(j)
        # Held at half precision: these coordinates are below 2048 px (load_proposals).
        np.testing.assert_array_equal(pooled, raw[kept, :4].astype(np.float16))
    assert len(dataset.proposals[0]) == 0
    assert len(dataset.proposals[1]) < len(proposals[coco['images'][1]['id']])
    # neg_chips_per_image=0, the ablation: the file is not even read.
    path.write_bytes(b'not a pickle')
    dataset = build(coco_root, tmp_path, proposals_file=str(path), neg_chips_per_image=0, cache_dir=None)
    assert dataset.proposals is None and all(dataset.chips.table(0).positive)


def iou(a, b):
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


@pytest.mark.parametrize('bad, message', [
    (np.zeros((3, 6)), r'image 1 must have shape \[P, 4\] or \[P, 5\]'),
    (np.full((2, 5), np.nan), 'image 1 hold NaN'),
])
def test_malformed_proposals_name_their_image(coco_root, tmp_path, bad, message):
    coco, _, _, _ = coco_inputs(coco_root)
    proposals = {image['id']: np.zeros((0, 5)) for image in coco['images']}
    proposals[1] = bad
    path = tmp_path / 'proposals.pkl'
    path.write_bytes(pickle.dumps(proposals))
    with pytest.raises(ValueError, match=message):
        build(coco_root, tmp_path, proposals_file=str(path), cache_dir=None)
    # Scores are needed to pool by NMS; without them the file is usable as it is.
    proposals[1] = np.array([[10, 10, 50, 50]], np.float32)
    path.write_bytes(pickle.dumps(proposals))
    with pytest.raises(ValueError, match='NMS needs scores'):
        build(coco_root, tmp_path, proposals_file=str(path), cache_dir=None)
    assert len(build(coco_root, tmp_path, proposals_file=str(path), proposals_nms_iou=None,
                     cache_dir=None).proposals[0]) == 1


def edit_annotations(root, edit):
    path = root / 'annotations.json'
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))
    return coco


def warnings_of(monkeypatch):
    logged = []
    monkeypatch.setattr(sniper_dataset, 'print_log',
                        lambda message, **kwargs: logged.append(message) if kwargs.get('level') else None)
    return logged


def test_annotations_not_trained_on_are_reported_by_reason(tmp_path, monkeypatch):
    root = tmp_path / 'coco'
    write_synthetic_coco(str(root), 3, seed=4, image_size=(300, 200), objects_per_image=(2, 2), size_range=(30, 60))

    def add_bad_boxes(coco):
        def box(id, image_id, bbox, category_id=1, **flags):
            coco['annotations'].append(dict(id=id, image_id=image_id, category_id=category_id, bbox=bbox,
                                            **{'area': bbox[2] * bbox[3], 'iscrowd': 0, **flags}))
        # Areas as a segmentation would give them: only the width tells these are degenerate.
        box(101, 1, [10, 10, 0, 20], area=50.0)  # zero width
        box(102, 2, [50, 10, -5, 20], area=50.0)  # negative width, which mmdet's order would call outside the image
        box(103, 3, [20, 20, 30, 0.5])  # under a pixel high
        box(104, 1, [310, 10, 20, 20])  # right of the 300 px wide image
        box(105, 2, [10, -40, 20, 30])  # above the image
        box(106, 3, [10, 10, 40, 40], iscrowd=1)
        box(107, 1, [10, 10, 40, 40], category_id=9)
        box(108, 2, [10, 10, 40, 40], ignore=1)
        coco['categories'].append(dict(id=9, name='unknown'))

    coco = edit_annotations(root, add_bad_boxes)
    logged = warnings_of(monkeypatch)
    dataset = SniperDataset(coco_config(root), cache_dir=None, **SETTINGS)
    assert len(logged) == 1
    lines = logged[0].splitlines()
    assert lines[0].startswith(f'SNIPER does not train on these of the {len(coco["annotations"])} annotations of ')
    assert lines[0].endswith('annotations.json:')
    assert sorted(line.strip() for line in lines[1:]) == sorted([
        'degenerate (width or height < 1, or area <= 0): 3, e.g. id 101 (000000.jpg); id 102 (000001.jpg); '
        'id 103 (000002.jpg)',
        'outside the image: 2, e.g. id 104 (000000.jpg); id 105 (000001.jpg)',
        'crowd (iscrowd=1), kept as ignore regions: never targets: 1, e.g. id 106 (000002.jpg)',
        'of a category not in the classes: 1, e.g. id 107 (000000.jpg)',
        'marked ignore: 1, e.g. id 108 (000001.jpg)',
    ])
    # What is reported is exactly what the chips are made of: the 6 good boxes and the crowd box.
    assert [len(b) for b in dataset.gt_boxes] == [2, 2, 3] and dataset.gt_crowd[2].tolist() == [False, False, True]


def test_examples_stop_at_five_and_images_left_out_are_named(tmp_path, monkeypatch):
    root = tmp_path / 'coco'
    write_synthetic_coco(str(root), 2, seed=4, image_size=(300, 200), objects_per_image=(2, 2), size_range=(30, 60))

    def add_degenerate(coco):
        coco['annotations'] += [dict(id=200 + k, image_id=1, category_id=1, bbox=[5, 5, 0, 5], area=0, iscrowd=0)
                                for k in range(7)]

    edit_annotations(root, add_degenerate)
    logged = warnings_of(monkeypatch)
    # The second image, left out by the wrapped dataset, takes its 2 boxes with it.
    SniperDataset(coco_config(root, indices=[0]), cache_dir=None, **SETTINGS)
    assert logged[0].splitlines()[1:] == [
        '  degenerate (width or height < 1, or area <= 0): 7, e.g. ' + '; '.join(
            f'id {200 + k} (000000.jpg)' for k in range(5)),
        '  on an image the wrapped dataset left out (filter_cfg or indices): 2, e.g. id 3 (000001.jpg); '
        'id 4 (000001.jpg)']


def test_a_dataset_with_its_own_rules_or_without_coco_api_is_reported_as_far_as_known(tmp_path, monkeypatch):
    from mmdet.datasets import CocoDataset

    class NoSmallBoxes(CocoDataset):
        def parse_data_info(self, raw_data_info):
            info = super().parse_data_info(raw_data_info)
            info['instances'] = [i for i in info['instances'] if i['bbox'][2] - i['bbox'][0] >= 40]
            return info

    root = tmp_path / 'coco'
    coco = json.loads(open(write_synthetic_coco(str(root), 3, seed=5, image_size=(300, 200), objects_per_image=(3, 3),
                                                size_range=(20, 80), crowd_fraction=0.5)).read())
    narrow = [a for a in coco['annotations'] if a['bbox'][2] < 40]
    crowd = [a for a in coco['annotations'] if a['iscrowd'] and a['bbox'][2] >= 40]
    assert narrow and crowd
    config = {k: v for k, v in coco_config(root).items() if k != 'type'}
    logged = warnings_of(monkeypatch)
    SniperDataset(NoSmallBoxes(**config, lazy_init=True), cache_dir=None, **SETTINGS)
    lines = logged[0].splitlines()[1:]
    unknown = [line for line in lines if 'dropped by NoSmallBoxes for a reason not known here' in line]
    assert len(unknown) == 1 and f'here: {len(narrow)}, e.g. image 000000.jpg' in unknown[0]
    # Built already, the dataset's COCO api is gone: only its crowd instances are known.
    built = NoSmallBoxes(**config)
    logged.clear()
    SniperDataset(built, cache_dir=None, **SETTINGS)
    assert len(logged) == 1 and logged[0].splitlines()[1].startswith(
        f'  crowd (iscrowd=1), kept as ignore regions: never targets: {len(crowd)}, e.g. ')


def test_missing_images_are_an_error_listing_them_or_skipped_with_a_warning(tmp_path, monkeypatch):
    root = tmp_path / 'coco'
    write_synthetic_coco(str(root), 4, seed=6, image_size=(300, 200))
    os.remove(root / 'images' / '000001.jpg')
    os.remove(root / 'images' / '000003.jpg')
    with pytest.raises(ValueError, match=r"2 of the 4 images .* missing: .*000001\.jpg, .*000003\.jpg; set "
                                         r"missing_images='skip'"):
        SniperDataset(coco_config(root), cache_dir=None, **SETTINGS)

    logged = warnings_of(monkeypatch)
    dataset = SniperDataset(coco_config(root), cache_dir=None, missing_images='skip', **SETTINGS)
    assert 'SNIPER skips 2 of the 4 images' in logged[0] and '000001.jpg' in logged[0] and '000003.jpg' in logged[0]
    assert "on an image missing on disk (missing_images='skip')" in logged[1]
    present = ['000000.jpg', '000002.jpg']
    assert [osp.basename(p) for p in dataset.image_paths] == present
    # The chips are those of the two present images, as if the others were never listed.
    _, sizes, boxes, crowd = coco_inputs(root)
    generator = ChipGenerator(**SETTINGS)
    for epoch in range(3):
        expected = generator.generate_positive(sizes[[0, 2]], [boxes[0], boxes[2]], [crowd[0], crowd[2]], seed=0,
                                               epoch=epoch)
        keys = keys_of(dataset, epoch)
        np.testing.assert_array_equal([k.chip for k in keys], expected.chips)
        np.testing.assert_array_equal([k.image_index for k in keys], expected.image_index)
        assert set(expected.image_index.tolist()) == {0, 1}
        for key in keys:
            assert osp.basename(dataset.get_data_info(key)['img_path']) == present[key.image_index]
    assert osp.basename(dataset[keys[-1]]['data_samples'].img_path) == '000002.jpg'

    for name in ('000000.jpg', '000002.jpg'):
        os.remove(root / 'images' / name)
    with pytest.raises(ValueError, match='4 of the 4 images .* missing: .*: no image is left to train on'):
        SniperDataset(coco_config(root), cache_dir=None, missing_images='skip', **SETTINGS)


@pytest.mark.parametrize('content', [b'', b'{"images": [{"id": 1, "wid'], ids=['empty', 'truncated'])
def test_an_annotation_file_that_is_not_json_says_so(tmp_path, content):
    root = tmp_path / 'coco'
    write_synthetic_coco(str(root), 1, seed=0, image_size=(300, 200))
    (root / 'annotations.json').write_bytes(content)
    with pytest.raises(ValueError, match=rf'annotations\.json\' is not valid JSON \({len(content)} bytes\): ') as error:
        SniperDataset(coco_config(root), cache_dir=None, **SETTINGS)
    assert isinstance(error.value.__cause__, json.JSONDecodeError)
