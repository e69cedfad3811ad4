"""SAHI's sliced inference (pip ``sahi``, an optional extra: ``pip install '.[bench]'``) around an mmdet
detector that is already built and loaded, for tools/benchmark_inference_peers.py.

SAHI's own ``MmdetDetectionModel`` builds the detector a second time, from the config and checkpoint
files, through mmdet's ``DetInferencer``, which fails with this project twice: torch >= 2.6 loads the
checkpoint weights-only, and refuses the mmengine message hub pickled in it; and its ``has_mask``
reads ``cfg.train_dataloader.dataset['pipeline']``, a ``KeyError`` when the training dataset wraps
another (``SniperDataset(dataset=...)``). Here SAHI is handed the detector the benchmark has loaded,
through ``MmdetDetectionModel``'s ``model`` argument (no second load), and ``has_mask`` is answered
for what the adapter returns: boxes. SAHI itself is used as released.
"""
from typing import Sequence, Tuple

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.structures import InstanceData
from sahi.models.mmdet import MmdetDetectionModel


def ndarray_pipeline(pipeline: Sequence[dict]) -> list:
    """A test pipeline that reads the image from ``results['img']`` (what SAHI hands over) instead of a
    file, without the annotations: ``LoadImageFromFile`` becomes ``LoadImageFromNDArray``, as mmdet's
    ``DetInferencer`` (which SAHI uses) does, and ``LoadAnnotations`` is dropped."""
    out, loads = [], 0
    for transform in pipeline:
        kind = transform['type'].split('.')[-1]
        if kind == 'LoadAnnotations':
            continue
        if kind == 'LoadImageFromFile':
            transform = {**transform, 'type': 'mmdet.LoadImageFromNDArray'}
            loads += 1
        out.append(transform)
    if loads != 1:
        raise ValueError(f'pipeline must load the image with exactly one LoadImageFromFile, found {loads} in '
                         f'{[t["type"] for t in pipeline]}')
    return out


class DetectorCall:
    """The interface SAHI's ``MmdetDetectionModel`` calls its model through (``DetInferencerWrapper``'s):
    a list of BGR ``(H, W, 3)`` images in, ``{'predictions': [dict(bboxes, scores, labels)]}`` out, in
    each image's pixels, through the config's test pipeline and ``detector.test_step``."""

    def __init__(self, detector: torch.nn.Module, pipeline: Sequence[dict]) -> None:
        self.detector = detector
        self.pipeline = Compose(ndarray_pipeline(pipeline))

    def __call__(self, images: Sequence[np.ndarray], batch_size: int = 1) -> dict:
        # SAHI flips its RGB slices to BGR with a negative stride; the pipeline needs them contiguous.
        batch = pseudo_collate([self.pipeline(dict(img=np.ascontiguousarray(image))) for image in images])
        with torch.no_grad():
            results = self.detector.test_step(batch)
        # Python lists, as DetInferencer's pred2dict makes them: SAHI checks the labels are ints.
        return dict(predictions=[dict(bboxes=r.pred_instances.bboxes.tolist(), scores=r.pred_instances.scores.tolist(),
                                      labels=r.pred_instances.labels.tolist()) for r in results])


class InMemoryMmdetModel(MmdetDetectionModel):
    """SAHI's ``MmdetDetectionModel`` around a built detector.

    Args:
        detector (nn.Module): The mmdet detector, weights loaded, in eval mode, on its device.
        pipeline (list[dict]): The config's test pipeline (``test_dataloader.dataset.pipeline``), run on
            every slice as SAHI's ``DetInferencer`` would.
        classes (Sequence[str]): The class names, in label order.
        confidence_threshold (float): SAHI drops predictions scoring below it.
    """

    def __init__(self, detector: torch.nn.Module, pipeline: Sequence[dict], classes: Sequence[str],
                 confidence_threshold: float) -> None:
        # A category mapping given, set_model does not read the detector's dataset_meta for the names.
        super().__init__(model=DetectorCall(detector, pipeline), confidence_threshold=confidence_threshold,
                         category_mapping={str(i): name for i, name in enumerate(classes)},
                         device=str(next(detector.parameters()).device))

    @property
    def has_mask(self) -> bool:
        return False  # DetectorCall returns boxes only


def to_instances(object_predictions: Sequence, max_dets: int, scale: Tuple[float, float] = (1.0, 1.0)) -> InstanceData:
    """SAHI's merged predictions of one image as mmdet's ``pred_instances``.

    Args:
        object_predictions (Sequence[sahi.prediction.ObjectPrediction]): In the pixels of the image SAHI
            was given.
        max_dets (int): Keep the best-scoring ``max_dets``, as the other tests' detectors keep theirs.
        scale (tuple[float, float]): ``(sx, sy)``, how much that image was enlarged from the original
            (2x: ``(2.0, 2.0)``); the boxes are divided by it.

    Returns:
        InstanceData: ``bboxes`` float32 ``(n, 4)`` xyxy in original pixels, ``scores`` float32 ``(n,)``,
        ``labels`` int64 ``(n,)``, by descending score.
    """
    boxes = torch.tensor([p.bbox.to_xyxy() for p in object_predictions], dtype=torch.float32).reshape(-1, 4)
    scores = torch.tensor([p.score.value for p in object_predictions], dtype=torch.float32)
    labels = torch.tensor([p.category.id for p in object_predictions], dtype=torch.int64)
    sx, sy = scale
    order = torch.argsort(scores, descending=True, stable=True)[:max_dets]
    return InstanceData(bboxes=boxes[order] / boxes.new_tensor([sx, sy, sx, sy]), scores=scores[order],
                        labels=labels[order])
