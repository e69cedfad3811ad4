import json
import sys

import cv2
import numpy as np
import pytest
from make_tree_mosaic import main, mosaic_coco, mosaic_layout


class TestMosaicLayout:

    def test_rows_cycle_from_the_next_image_until_both_sides_reach_the_size(self):
        # By hand: row 0 holds images 0, 1, 0 (x 0, 3, 5; 8 wide, 4 high); row 1 starts with image 1:
        # 1, 0, 1 (x 0, 2, 5; 7 wide, 4 high) at y 4. 8 high >= 6 ends it.
        placements, size = mosaic_layout([(3, 2), (2, 4)], 6)
        assert placements == [(0, 0, 0), (1, 3, 0), (0, 5, 0), (1, 0, 4), (0, 2, 4), (1, 5, 4)]
        assert size == (8, 8)

    def test_the_tree_images_make_a_mosaic_of_at_least_4000_px(self):
        placements, (width, height) = mosaic_layout([(766, 824), (624, 1035)], 4000)
        assert (width, height) == (6 * 766 // 2 + 6 * 624 // 2, 4 * 1035)
        assert len(placements) == 24

    def test_an_image_larger_than_the_size_is_placed_once(self):
        assert mosaic_layout([(50, 60)], 10) == ([(0, 0, 0)], (50, 60))

    @pytest.mark.parametrize('sizes, min_size, match',
                             [([], 10, 'sizes'), ([(3, 2)], 0, 'min_size'), ([(3, 2)], 2.5, 'min_size')])
    def test_bad_arguments_are_errors_naming_them(self, sizes, min_size, match):
        with pytest.raises(ValueError, match=match):
            mosaic_layout(sizes, min_size)


def test_annotations_are_shifted_by_their_image_offset():
    coco = dict(images=[dict(id=10, file_name='a.png', width=3, height=2),
                        dict(id=20, file_name='b.png', width=2, height=4)],
                annotations=[dict(id=7, image_id=10, category_id=1, bbox=[1, 0, 1, 1], area=1, iscrowd=0),
                             dict(id=8, image_id=20, category_id=1, bbox=[0.5, 1, 1, 2], area=2, iscrowd=1)],
                categories=[dict(id=1, name='tree')])
    placements = [(0, 0, 0), (1, 3, 0), (0, 5, 0), (1, 0, 4)]
    out = mosaic_coco(coco, placements, (8, 8))
    assert out['images'] == [dict(id=1, file_name='mosaic.png', width=8, height=8)]
    assert out['categories'] == coco['categories']
    assert [a['bbox'] for a in out['annotations']] == [[1, 0, 1, 1], [3.5, 1, 1, 2], [6, 0, 1, 1], [0.5, 5, 1, 2]]
    assert [a['id'] for a in out['annotations']] == [1, 2, 3, 4]
    assert {a['image_id'] for a in out['annotations']} == {1}
    assert [a['iscrowd'] for a in out['annotations']] == [0, 1, 0, 1]
    assert [a['area'] for a in out['annotations']] == [1, 2, 1, 2]


def test_every_crown_shows_the_same_pixels_in_the_mosaic(tmp_path, monkeypatch, rng):
    source = tmp_path / 'val'
    (source / 'images').mkdir(parents=True)
    images = [rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)]
    boxes = [[[1, 2, 3, 4], [0, 0, 7, 9]], [[2, 1, 4, 3]]]  # x, y, w, h: the second covers its whole image
    coco = dict(images=[], annotations=[], categories=[dict(id=1, name='tree')])
    for i, image in enumerate(images):
        cv2.imwrite(str(source / 'images' / f'{i}.png'), image)
        coco['images'].append(dict(id=i + 1, file_name=f'{i}.png', width=image.shape[1], height=image.shape[0]))
        coco['annotations'] += [dict(id=len(coco['annotations']) + 1, image_id=i + 1, category_id=1, bbox=b,
                                     area=b[2] * b[3], iscrowd=0) for b in boxes[i]]
    (source / 'annotations.json').write_text(json.dumps(coco))
    out = tmp_path / 'mosaic'
    monkeypatch.setattr(sys, 'argv', ['make_tree_mosaic.py', str(out), '--size', '20', '--source', str(source)])
    main()

    mosaic = cv2.imread(str(out / 'images' / 'mosaic.png'), cv2.IMREAD_COLOR)
    result = json.loads((out / 'annotations.json').read_text())
    assert result['images'][0]['width'] == mosaic.shape[1] >= 20
    assert result['images'][0]['height'] == mosaic.shape[0] >= 20
    # Image 0 (7 wide) and 1 (6 wide) alternate: each crown appears once per copy.
    placements, _ = mosaic_layout([(7, 9), (6, 5)], 20)
    assert len(result['annotations']) == sum(len(boxes[index]) for index, _, _ in placements)
    whole = [a for a in result['annotations'] if a['bbox'][2:] == [7, 9]]
    assert len(whole) == sum(index == 0 for index, _, _ in placements)
    for ann in result['annotations']:
        x, y, w, h = ann['bbox']
        crop = mosaic[y:y + h, x:x + w]
        assert any(crop.shape == images[i][b[1]:b[1] + b[3], b[0]:b[0] + b[2]].shape
                   and np.array_equal(crop, images[i][b[1]:b[1] + b[3], b[0]:b[0] + b[2]])
                   for i in range(2) for b in boxes[i])
    # Below image 1 in a row with image 0 (9 high), the mosaic is black.
    index, x, y = next(p for p in placements if p[0] == 1)
    assert not mosaic[y + 5:y + 9, x:x + 6].any()
