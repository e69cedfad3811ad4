"""MaxDetsCocoMetric against mmdet's CocoMetric: equal wherever no image has more than 100
detections, and on a dense image all of a perfect detector's boxes count."""
import json

import numpy as np
import pytest
import torch
from mmdet.evaluation.metrics import CocoMetric

import mmdet_sniper  # noqa: F401  (registers the metric)
from mmdet_sniper.evaluation import MaxDetsCocoMetric

KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')


def write_annotations(path, boxes_per_image, image_size=(800, 600)):
    images, annotations = [], []
    for image_id, boxes in enumerate(boxes_per_image, start=1):
        images.append(dict(id=image_id, file_name=f'{image_id}.jpg', width=image_size[0], height=image_size[1]))
        for x1, y1, x2, y2, label in boxes:
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=int(label) + 1,
                                    bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1), iscrowd=0))
    categories = [dict(id=1, name='a'), dict(id=2, name='b')]
    path.write_text(json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    return str(path)


def evaluate(metric, predictions):
    metric.dataset_meta = dict(classes=('a', 'b'))
    for image_id, (boxes, scores, labels) in enumerate(predictions, start=1):
        metric.process({}, [dict(img_id=image_id, ori_shape=(600, 800), pred_instances=dict(
            bboxes=torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            scores=torch.as_tensor(scores, dtype=torch.float32), labels=torch.as_tensor(labels)))])
    return metric.evaluate(len(predictions))


def random_boxes(rng, count):
    xy = rng.uniform(0, 700, (count, 2))
    wh = rng.uniform(5, 100, (count, 2))
    return np.concatenate([xy, xy + wh], axis=1).round(1)


def test_equals_coco_metric_when_no_image_has_more_than_100_detections(tmp_path, rng):
    truth, predictions = [], []
    for _ in range(4):
        gt = random_boxes(rng, int(rng.integers(1, 30)))
        labels = rng.integers(0, 2, len(gt))
        truth.append(np.concatenate([gt, labels[:, None]], axis=1).tolist())
        # Jittered copies of the truth and some misses, up to 100 per image.
        detections = np.concatenate([gt + rng.normal(0, 3, gt.shape), random_boxes(rng, int(rng.integers(0, 40)))])
        detections[:, 2:] = np.maximum(detections[:, 2:], detections[:, :2] + 1)
        det_labels = np.concatenate([labels, rng.integers(0, 2, len(detections) - len(gt))])
        predictions.append((detections, rng.uniform(0.05, 1, len(detections)), det_labels))
    ann_file = write_annotations(tmp_path / 'ann.json', truth)
    expected = evaluate(CocoMetric(ann_file=ann_file), predictions)
    got = evaluate(MaxDetsCocoMetric(ann_file=ann_file, max_dets=300), predictions)
    assert expected['coco/bbox_mAP'] > 0.1
    for key in KEYS:
        assert got[f'coco/{key}'] == pytest.approx(expected[f'coco/{key}'], abs=1e-3), key
    assert got['coco/bbox_mAP_100dets'] == pytest.approx(expected['coco/bbox_mAP'], abs=1e-3)


def test_a_dense_image_counts_every_detection_up_to_max_dets(tmp_path):
    # 150 disjoint 30 px objects and a perfect detector: COCO's 100 detections find two thirds.
    grid = [(x, y, x + 30, y + 30, 0) for x in range(0, 750, 50) for y in range(0, 500, 50)]
    assert len(grid) == 150
    ann_file = write_annotations(tmp_path / 'ann.json', [grid])
    boxes = np.array([g[:4] for g in grid], dtype=np.float32)
    prediction = [(boxes, np.linspace(1.0, 0.5, len(boxes)), np.zeros(len(boxes), np.int64))]
    coco = evaluate(CocoMetric(ann_file=ann_file), prediction)
    dense = evaluate(MaxDetsCocoMetric(ann_file=ann_file, max_dets=300), prediction)
    assert dense['coco/bbox_mAP'] == pytest.approx(1.0) and dense['coco/bbox_mAP_75'] == pytest.approx(1.0)
    assert coco['coco/bbox_mAP'] < 0.7
    assert dense['coco/bbox_mAP_100dets'] == pytest.approx(coco['coco/bbox_mAP'], abs=1e-3)
    # Capped at 120, the dense metric counts 120 of the 150.
    capped = evaluate(MaxDetsCocoMetric(ann_file=ann_file, max_dets=120), prediction)
    assert coco['coco/bbox_mAP'] < capped['coco/bbox_mAP'] < 0.85


@pytest.mark.parametrize('kwargs, message', [(dict(max_dets=100), 'max_dets must be an int > 100'),
                                             (dict(max_dets=300.0), 'max_dets must be an int'),
                                             (dict(proposal_nums=(1, 10, 300)), 'leave it out'),
                                             (dict(use_mp_eval=True), 'use_mp_eval')])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaxDetsCocoMetric(**kwargs)
