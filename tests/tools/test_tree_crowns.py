import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from tree_crowns import (Region, SourceSplit, assign_regions, build_coco, coco_stats, grid_regions, parse_voc,
                         split_image)


def voc_xml(boxes, labels=None, size=(100, 80)):
    labels = labels or ['Tree'] * len(boxes)
    objects = ''.join(f'<object><name>{label}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>'
                      f'<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>'
                      for b, label in zip(boxes, labels))
    return (f'<annotation><filename>a.png</filename><size><width>{size[0]}</width><height>{size[1]}</height>'
            f'<depth>3</depth></size>{objects}</annotation>')


def targets_per_crown(shown, n):
    counts = np.zeros(n, dtype=int)
    for region_boxes in shown:
        np.add.at(counts, region_boxes.crown[~region_boxes.iscrowd], 1)
    return counts


class TestParseVoc:

    def test_boxes_labels_and_size(self):
        voc = parse_voc(voc_xml([(1, 2, 30, 40), (50, 10, 100, 80)], ['Dead', 'Alive']), 'a.xml')
        assert (voc.width, voc.height) == (100, 80)
        np.testing.assert_array_equal(voc.boxes, [[1, 2, 30, 40], [50, 10, 100, 80]])
        assert voc.labels == ('Dead', 'Alive')

    def test_box_reaching_outside_is_clipped(self):
        voc = parse_voc(voc_xml([(-5, 70, 20, 95)]), 'a.xml')
        np.testing.assert_array_equal(voc.boxes, [[0, 70, 20, 80]])

    @pytest.mark.parametrize('box', [(120, 10, 130, 20), (10, 20, 10, 30), (30, 20, 10, 40)])
    def test_box_without_area_is_an_error_naming_it(self, box):
        with pytest.raises(ValueError, match=r'a.xml: 1 boxes have no area .*object 1'):
            parse_voc(voc_xml([(1, 2, 30, 40), box]), 'a.xml')

    def test_no_objects_is_an_error(self):
        with pytest.raises(ValueError, match='a.xml: no <object>'):
            parse_voc(voc_xml([]), 'a.xml')

    def test_malformed_xml_is_an_error(self):
        with pytest.raises(ValueError, match='a.xml: malformed xml'):
            parse_voc(voc_xml([(1, 2, 30, 40)])[:-5], 'a.xml')

    def test_missing_coordinate_is_an_error(self):
        with pytest.raises(ValueError, match=r'a.xml: object 0: <bndbox/ymax> is None'):
            parse_voc(voc_xml([(1, 2, 30, 40)]).replace('<ymax>40</ymax>', ''), 'a.xml')


class TestAssignRegions:

    def test_crown_across_a_border(self):
        left, right = Region(0, 0, 50, 80), Region(50, 0, 100, 80)
        # Centre x 45: owned by the left region, its right part is crowd in the right one.
        shown = assign_regions([[30, 10, 60, 30]], [left, right])
        np.testing.assert_array_equal(shown[0].boxes, [[30, 10, 50, 30]])
        assert shown[0].iscrowd.tolist() == [False]
        np.testing.assert_array_equal(shown[1].boxes, [[0, 10, 10, 30]])
        assert shown[1].iscrowd.tolist() == [True]

    def test_centre_on_a_border_belongs_to_the_region_after_it(self):
        shown = assign_regions([[40, 10, 60, 30]], grid_regions(100, 80, 1, 2))
        assert shown[0].iscrowd.tolist() == [True] and shown[1].iscrowd.tolist() == [False]

    def test_box_touching_a_region_is_not_shown_there(self):
        shown = assign_regions([[10, 10, 50, 30]], grid_regions(100, 80, 1, 2))
        assert len(shown[0].crown) == 1 and len(shown[1].crown) == 0

    def test_regions_must_tile_the_centres(self):
        with pytest.raises(ValueError, match=r'crowns \[0\] are in \[0\] regions'):
            assign_regions([[60, 10, 70, 30]], [Region(0, 0, 50, 80)])

    def test_random_boxes_on_random_grids(self, rng):
        for _ in range(20):
            width, height = rng.integers(50, 400, size=2)
            rows, cols = rng.integers(1, 5, size=2)
            n = int(rng.integers(1, 60))
            x1, y1 = rng.uniform(0, width - 1, n), rng.uniform(0, height - 1, n)
            boxes = np.stack([x1, y1, np.minimum(x1 + rng.uniform(0.5, 80, n), width),
                              np.minimum(y1 + rng.uniform(0.5, 80, n), height)], axis=1)
            regions = grid_regions(width, height, rows, cols)
            shown = assign_regions(boxes, regions)
            assert targets_per_crown(shown, n).tolist() == [1] * n
            for region, region_boxes in zip(regions, shown):
                b = region_boxes.boxes
                assert np.all(b[:, 2:] > b[:, :2])
                assert np.all(b >= 0) and np.all(b[:, [2, 3]] <= [region.width, region.height])
                # Each box is its crown clipped to the region, moved into the region's coordinates.
                offset = [region.x0, region.y0] * 2
                expected = np.clip(boxes[region_boxes.crown], offset, [region.x1, region.y1] * 2) - offset
                np.testing.assert_allclose(b, expected)


def test_split_image_assigns_cells_and_merges_classes():
    voc = parse_voc(voc_xml([(10, 10, 30, 30), (40, 10, 70, 30), (80, 50, 95, 70)], ['Dead', 'Alive', 'Tree']),
                    'a.xml')
    items = split_image(voc, SourceSplit('a', 1, 2, ((0, 1), )))
    assert [(split, stem) for split, stem, _ in items] == [('train', 'a_r0c0'), ('val', 'a_r0c1')]
    with pytest.raises(ValueError, match=r"labels \['Car'\] are not tree crowns"):
        split_image(parse_voc(voc_xml([(10, 10, 30, 30)], ['Car']), 'b.xml'), SourceSplit('b', 1, 1))


def test_coco_loads_with_pycocotools(tmp_path):
    voc = parse_voc(voc_xml([(10, 10, 30, 30), (40, 10, 70, 30), (80, 50, 95, 70)]), 'a.xml')
    items = [(f'{stem}.png', shown) for _, stem, shown in split_image(voc, SourceSplit('a', 1, 2))]
    path = tmp_path / 'annotations.json'
    path.write_text(json.dumps(build_coco(items)))
    coco = COCO(str(path))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == ['tree']
    assert [(im['width'], im['height']) for im in coco.loadImgs(coco.getImgIds())] == [(50, 80), (50, 80)]
    anns = coco.loadAnns(coco.getAnnIds())
    assert [(a['image_id'], a['iscrowd']) for a in anns] == [(1, 0), (1, 1), (2, 0), (2, 0)]
    assert anns[1]['bbox'] == [40.0, 10.0, 10.0, 20.0] and anns[2]['bbox'] == [0.0, 10.0, 20.0, 20.0]
    for a in anns:
        assert a['area'] == pytest.approx(a['bbox'][2] * a['bbox'][3])
    stats = coco_stats(coco.dataset)
    assert (stats['images'], stats['crowns'], stats['crowd']) == (2, 3, 1)
    assert stats['share_below_32'] == 1.0
