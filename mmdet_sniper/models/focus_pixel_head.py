"""AutoFocus's FocusPixel branch (Najibi, Singh and Davis, "AutoFocus: Efficient Multi-Scale
Inference", ICCV 2019): a small head on the detector's features that predicts where the image holds
objects too small for the current scale, trained on SNIPER's chips together with the detector."""
from numbers import Real
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import get_box_tensor
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet_sniper.compat import zip_strict
from mmdet_sniper.models.valid_range_roi_head import ValidRangeRoIHead

FOCUS, BACKGROUND, IGNORE = 1, 0, -1


def focus_pixel_labels(bboxes: Tensor, feat_size: Tuple[int, int], stride: int, min_size: float = 5.0,
                       small_size: float = 64.0, ignore_size: float = 90.0) -> Tensor:
    """The FocusPixel labels of one chip on a feature grid.

    A box of side ``s = sqrt(w * h)`` (chip pixels) marks every cell it overlaps: focus (1) when
    ``min_size < s < small_size``, ignore (-1) when ``s <= min_size`` or ``small_size <= s <
    ignore_size``; a larger box leaves its cells as they are. Every other cell is background (0).
    These are the authors' rules (data_workers.py ``gen_mask``: AUTO_FOCUS_DC_LOW 5,
    AUTO_FOCUS_SMALL_THRESH 64, AUTO_FOCUS_DC_HIGH 90 on COCO's 512 px chips) with two deliberate
    differences, both in docs/autofocus.md: a cell is marked iff it overlaps the box (the authors'
    loop also marks the column and row after the box), and focus wins over ignore where boxes of
    both kinds overlap a cell (the authors' result depends on the order of the boxes).

    Args:
        bboxes (Tensor): ``(n, 4)`` xyxy in chip pixels: every box of the chip, targets and ignored
            ones alike (the rule is about sizes, not about what the detector learns).
        feat_size (tuple[int, int]): ``(height, width)`` of the grid, in cells.
        stride (int): chip pixels per cell.
        min_size, small_size, ignore_size (float): the size bounds above, chip pixels,
            ``0 <= min_size < small_size <= ignore_size``.

    Returns:
        Tensor: int64 ``(height, width)`` of 1, 0, -1, on ``bboxes``' device. A box with a NaN
        coordinate or no area marks nothing.
    """
    if not (isinstance(stride, int) and stride >= 1):
        raise ValueError(f'stride must be an int >= 1 (chip pixels per cell), got {stride!r}')
    if not 0 <= min_size < small_size <= ignore_size:
        raise ValueError(f'the sizes must satisfy 0 <= min_size < small_size <= ignore_size (chip pixels), got '
                         f'min_size={min_size}, small_size={small_size}, ignore_size={ignore_size}')
    if bboxes.dim() != 2 or bboxes.shape[1] != 4:
        raise ValueError(f'bboxes must be (n, 4) xyxy, got shape {tuple(bboxes.shape)}')
    height, width = feat_size
    labels = torch.zeros((height, width), dtype=torch.long, device=bboxes.device)
    boxes = bboxes.double()
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
    side = (wh[:, 0] * wh[:, 1]).sqrt()
    marked = (wh > 0).all(1) & ~boxes.isnan().any(1)
    focus = marked & (side > min_size) & (side < small_size)
    ignore = marked & ((side <= min_size) | ((side >= small_size) & (side < ignore_size)))
    # Cells [i * stride, (i + 1) * stride) overlapping [x1, x2): floor(x1 / stride) .. ceil(x2 / stride) - 1.
    first = (boxes[:, :2] / stride).floor().clamp(min=0)
    # Boxes wholly left of or above the grid end before cell 0: -1, an empty slice.
    last = ((boxes[:, 2:] / stride).ceil() - 1).clamp(min=-1)
    for kind, value in ((ignore, IGNORE), (focus, FOCUS)):
        for (x1, y1), (x2, y2) in zip(first[kind].long().tolist(), last[kind].long().tolist()):
            labels[y1:min(y2, height - 1) + 1, x1:min(x2, width - 1) + 1] = value
    return labels


@MODELS.register_module()
class FocusPixelHead(BaseModule):
    """Predicts, per cell of one feature level, the probability that it is a FocusPixel.

    The authors' branch (symbols/faster/resnet_mx_101_e2e.py, ``conv_new_2`` .. ``conv_new_out``): a
    3x3 and a 1x1 convolution with ReLU, then a 1x1 convolution to the prediction, initialised
    N(0, 0.01). Their two-way softmax is written here as one logit and a sigmoid, the same function
    (softmax over two logits is the sigmoid of their difference) with half the output. The loss is
    the cross-entropy averaged over the cells not ignored, as their ``normalization='valid'``.

    Args:
        in_channels (int): channels of the feature level.
        level (int): index of the level in the neck's outputs.
        stride (int): input pixels per cell of that level.
        feat_channels (int): channels of the two hidden convolutions (the authors': 256).
        min_size, small_size, ignore_size (float): :func:`focus_pixel_labels`' size bounds, in chip
            pixels: set them to the sizes the next finer scale is for.
        loss_weight (float): weight of the loss in the detector's total.
    """

    def __init__(self, in_channels: int, level: int, stride: int, feat_channels: int = 256, min_size: float = 5.0,
                 small_size: float = 64.0, ignore_size: float = 90.0, loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('feat_channels', feat_channels), ('stride', stride)):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f'{name} must be an int >= 1, got {value!r}')
        if not (isinstance(level, int) and level >= 0):
            raise ValueError(f'level must be an int >= 0 (index into the neck outputs), got {level!r}')
        if not (isinstance(loss_weight, Real) and loss_weight >= 0):
            raise ValueError(f'loss_weight must be a number >= 0, got {loss_weight!r}')
        # Checked once here rather than at the first training step.
        focus_pixel_labels(torch.zeros((0, 4)), (1, 1), stride, min_size, small_size, ignore_size)
        self.level = level
        self.stride = stride
        self.sizes = dict(min_size=min_size, small_size=small_size, ignore_size=ignore_size)
        self.loss_weight = loss_weight
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, feat_channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(feat_channels, feat_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(feat_channels, 1, 1))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """``(N, H, W)`` FocusPixel logits of level ``self.level`` of ``feats``."""
        if self.level >= len(feats):
            raise ValueError(f'level {self.level} is out of the {len(feats)} feature levels of the neck')
        return self.convs(feats[self.level])[:, 0]

    def loss(self, feats: Sequence[Tensor], batch_data_samples: List[DetDataSample]) -> dict:
        """``loss_focus``: the cross-entropy of every chip's cells against :func:`focus_pixel_labels`
        of all its boxes (``gt_instances`` and ``ignored_instances``)."""
        logits = self(feats)
        height, width = logits.shape[1:]
        labels = torch.stack([
            focus_pixel_labels(self._boxes(sample, logits.device), (height, width), self.stride, **self.sizes)
            for sample in batch_data_samples])
        counted = labels != IGNORE
        if not counted.any():
            return dict(loss_focus=logits.sum() * 0)
        loss = F.binary_cross_entropy_with_logits(logits[counted], (labels[counted] == FOCUS).to(logits.dtype))
        return dict(loss_focus=self.loss_weight * loss)

    @staticmethod
    def _boxes(sample: DetDataSample, device: torch.device) -> Tensor:
        boxes = [sample.gt_instances.bboxes]
        if 'ignored_instances' in sample and 'bboxes' in sample.ignored_instances:
            boxes.append(sample.ignored_instances.bboxes)
        return torch.cat([get_box_tensor(b).reshape(-1, 4).to(device=device, dtype=torch.float32) for b in boxes])

    def predict(self, feats: Sequence[Tensor]) -> Tensor:
        """``(N, H, W)`` FocusPixel probabilities on the padded batch's grid of level ``self.level``."""
        return self(feats).sigmoid()


@MODELS.register_module()
class AutoFocusRoIHead(ValidRangeRoIHead):
    """SNIPER's R-CNN head with AutoFocus's FocusPixel branch on the same features.

    Training adds the branch's ``loss_focus`` to the R-CNN losses, on the same chips. Prediction
    sets each sample's ``pred_focus`` to its FocusPixel probabilities, ``(h, w)`` cells of
    ``focus_head.stride`` input pixels covering the sample's ``img_shape`` (the batch padding cut
    off), which :class:`~mmdet_sniper.models.autofocus_tta.AutoFocusTestTimeAug` turns into the
    chips of the next finer scale. The branch sits in the RoI head so that any two-stage detector
    config gains it by changing ``roi_head.type`` and adding ``focus_head``.

    Args:
        focus_head (dict): a :class:`FocusPixelHead` config.
        **kwargs: :class:`ValidRangeRoIHead`'s.
    """

    def __init__(self, focus_head: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.focus_head = MODELS.build(focus_head)

    def loss(self, x: Tuple[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: List[DetDataSample]) -> dict:
        losses = super().loss(x, rpn_results_list, batch_data_samples)
        losses.update(self.focus_head.loss(x, batch_data_samples))
        return losses

    def predict(self, x: Tuple[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: List[DetDataSample], rescale: bool = False) -> List[InstanceData]:
        results = super().predict(x, rpn_results_list, batch_data_samples, rescale=rescale)
        stride = self.focus_head.stride
        for sample, probs in zip_strict(batch_data_samples, self.focus_head.predict(x)):
            height, width = sample.img_shape
            sample.pred_focus = probs[:-(-height // stride), :-(-width // stride)]
        return results
