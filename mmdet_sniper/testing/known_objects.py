"""A fake detector that finds known objects in the windows of the sliced and AutoFocus tests, read
off images made by :func:`~mmdet_sniper.testing.positions.encoded_view`."""
import math
from typing import Optional, Sequence

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import nn

from .positions import decode_position


class KnownObjectsDetector(BaseModel):
    """In every window it is given, finds the known objects lying in it whose side
    ``sqrt(w * h)`` in the view is at least ``min_visible`` px: each clipped to the window, in window
    pixels, score 0.9. With ``focus_stride`` it has a FocusPixel branch (``roi_head.focus_head``) and
    sets the FocusPixels (probability 1) on the cells of the objects in the window too small to see.

    Args:
        objects: per view, float ``(n, 4)`` in view pixels.
        labels: ``(n,)``, the objects' labels; None: all 0.
        min_visible: the smallest side found, in view pixels.
        focus_stride: view pixels per FocusPixel; None: no FocusPixel branch.

    Attributes:
        calls: per ``test_step`` call, the ``img_shape`` of each of its windows.
        windows: every window, as ``(view, x1, y1, x2, y2)`` in view pixels.
    """

    def __init__(self, objects: Sequence, labels: Optional[Sequence] = None, min_visible: float = 0,
                 focus_stride: Optional[int] = None):
        super().__init__(data_preprocessor=DetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1], pad_size_divisor=1))
        self.objects = [torch.as_tensor(boxes, dtype=torch.float32) for boxes in objects]
        self.labels = None if labels is None else torch.as_tensor(labels)
        self.min_visible = min_visible
        if focus_stride is not None:
            self.roi_head = nn.Module()
            self.roi_head.focus_head = nn.Module()
            self.roi_head.focus_head.stride = focus_stride
        self.windows, self.calls = [], []

    @property
    def batch_sizes(self):
        """The windows of each ``test_step`` call."""
        return [len(shapes) for shapes in self.calls]

    def forward(self, inputs, data_samples=None, mode='tensor'):
        raise AssertionError('the sliced and AutoFocus tests call test_step')

    def test_step(self, data):
        data = self.data_preprocessor(data, False)
        self.calls.append([tuple(sample.img_shape) for sample in data['data_samples']])
        for image, sample in zip(data['inputs'], data['data_samples']):
            x0, y0, view = decode_position(image)
            h, w = sample.img_shape
            self.windows.append((view, x0, y0, x0 + w, y0 + h))
            origin = torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
            objects = self.objects[view]
            clipped = torch.minimum(objects.maximum(origin), origin + torch.tensor([w, h, w, h]))
            side = ((objects[:, 2] - objects[:, 0]) * (objects[:, 3] - objects[:, 1])).sqrt()
            inside = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
            seen = inside & (side >= self.min_visible)
            count = int(seen.sum())
            labels = torch.zeros(count, dtype=torch.long) if self.labels is None else self.labels[seen]
            sample.pred_instances = InstanceData(bboxes=clipped[seen] - origin, scores=torch.full((count,), 0.9),
                                                 labels=labels)
            if hasattr(self, 'roi_head'):
                stride = self.roi_head.focus_head.stride
                focus = torch.zeros((-(-h // stride), -(-w // stride)))
                for x1, y1, x2, y2 in (clipped[inside & ~seen] - origin).tolist():
                    focus[int(y1 // stride):math.ceil(y2 / stride), int(x1 // stride):math.ceil(x2 / stride)] = 1
                sample.pred_focus = focus
        return data['data_samples']
