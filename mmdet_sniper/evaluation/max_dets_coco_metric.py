"""COCO AP for data denser than COCO: every reported figure counts up to ``max_dets`` detections."""
from unittest import mock

import numpy as np
from mmdet.datasets.api_wrappers import COCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmdet.evaluation.metrics import coco_metric as coco_metric_module
from mmdet.registry import METRICS
from mmengine.logging import print_log


class _MaxDetsCOCOeval(COCOeval):
    """pycocotools' COCOeval whose summary reads every AP at ``params.maxDets[-1]`` detections per
    image (pycocotools reads the headline AP at a literal 100, whatever ``maxDets`` holds), and keeps
    COCO's AP at 100 detections in ``ap_at_100``."""

    def summarize(self):
        params = self.params
        if not self.eval:
            raise RuntimeError('accumulate() must run before summarize()')

        def stat(ap: bool, iou=None, area='all', max_dets=params.maxDets[-1]) -> float:
            values = self.eval['precision' if ap else 'recall']  # [T, R, K, A, M] or [T, K, A, M]
            if iou is not None:
                values = values[np.flatnonzero(np.isclose(params.iouThrs, iou))]
            values = values[..., params.areaRngLbl.index(area), params.maxDets.index(max_dets)]
            values = values[values > -1]
            return float(values.mean()) if values.size else -1.0

        first, second, last = params.maxDets
        # pycocotools' order, which mmdet's CocoMetric indexes.
        self.stats = np.array([
            stat(True), stat(True, iou=0.5), stat(True, iou=0.75), stat(True, area='small'),
            stat(True, area='medium'), stat(True, area='large'), stat(False, max_dets=first),
            stat(False, max_dets=second), stat(False), stat(False, area='small'), stat(False, area='medium'),
            stat(False, area='large')])
        self.ap_at_100 = stat(True, max_dets=100)
        print_log(f'COCO AP at up to {last} detections per image: {self.stats[0]:.3f} (at 100: '
                  f'{self.ap_at_100:.3f}); AP50, AP75, AP_s, AP_m, AP_l: '
                  + ', '.join(f'{v:.3f}' for v in self.stats[1:6]), logger='current')


@METRICS.register_module()
class MaxDetsCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric`` (bbox) whose AP, AP50, AP75 and AP by size all count up to ``max_dets``
    detections per image, under mmdet's metric names (``coco/bbox_mAP``, ...), plus COCO's AP at 100
    detections as ``coco/bbox_mAP_100dets``.

    COCO's protocol counts 100 detections per image, and a detector capped at 100 loses recall on an
    image holding more objects (132 crowns in one validation region of the tree data). Dense data is
    evaluated like VisDrone (500): at a ``max_dets`` above its densest image, stated beside the figure.

    Args:
        max_dets (int): detections per image counted, > 100.
        **kwargs: ``CocoMetric``'s, except ``proposal_nums`` (AR is read at 10, 100 and ``max_dets``)
            and ``use_mp_eval``.
    """

    def __init__(self, max_dets: int = 300, **kwargs) -> None:
        if not isinstance(max_dets, int) or max_dets <= 100:
            raise ValueError(f'max_dets must be an int > 100 (detections per image; CocoMetric counts 100), '
                             f'got {max_dets!r}')
        if 'proposal_nums' in kwargs:
            raise ValueError('MaxDetsCocoMetric sets proposal_nums from max_dets; leave it out')
        if kwargs.get('use_mp_eval'):
            raise ValueError("MaxDetsCocoMetric evaluates with pycocotools' COCOeval; use_mp_eval must be False")
        super().__init__(proposal_nums=(10, 100, max_dets), **kwargs)
        self.max_dets = max_dets

    def compute_metrics(self, results: list) -> dict:
        evaluations = []

        def evaluation(*args, **kwargs) -> _MaxDetsCOCOeval:
            evaluations.append(_MaxDetsCOCOeval(*args, **kwargs))
            return evaluations[-1]

        # CocoMetric builds its COCOeval from its module's name for it.
        with mock.patch.object(coco_metric_module, 'COCOeval', evaluation):
            metrics = super().compute_metrics(results)
        if evaluations:  # none when nothing was detected
            metrics['bbox_mAP_100dets'] = round(evaluations[-1].ap_at_100, 3)
        return metrics
