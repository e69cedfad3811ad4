"""An R-CNN RoI head that trains each chip only on proposals inside its scale's valid range."""
from typing import List, Sequence, Tuple

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet_sniper.chips.valid_range import ValidRange
from mmdet_sniper.compat import zip_strict


def filter_proposals_by_valid_range(proposals: InstanceData, valid_range: Sequence[float],
                                    scale_factor: Sequence[float]) -> InstanceData:
    """Keep the proposals whose size in original-image pixels is in a chip's valid range.

    Args:
        proposals (InstanceData): ``bboxes``, (n, 4) Tensor, xyxy in chip pixels, and any other
            fields of length n, which are kept row-aligned.
        valid_range (Sequence[float]): ``(lo, hi)`` in original pixels; -1 leaves that side
            unbounded (:meth:`ValidRange.from_pair`). A size is in range iff it is >= lo and < hi
            (:meth:`ValidRange.contains`).
        scale_factor (Sequence[float]): ``(sx, sy)``, chip pixels per original pixel.

    Returns:
        InstanceData: The proposals whose size ``sqrt(w * h / (sx * sy))`` is in range; an inverted
        box (``x2 < x1`` or ``y2 < y1``) has size 0, a box with a NaN coordinate is dropped.
    """
    valid = ValidRange.from_pair(valid_range, 'valid_range')
    sx, sy = (float(v) for v in scale_factor)
    # Float64: in float32 the size of a proposal on a bound (sides lo * sx and lo * sy) often
    # rounds to the other side of it.
    boxes = proposals.bboxes.double()
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
    return proposals[valid.contains((wh[:, 0] * wh[:, 1] / (sx * sy)).sqrt())]


@MODELS.register_module()
class ValidRangeRoIHead(StandardRoIHead):
    """``StandardRoIHead`` that, in training, drops each chip's proposals outside its valid range.

    SNIPER trains the R-CNN stage of a chip only on proposals whose size, measured in the original
    image, is valid for the chip's scale: an object too small or too large at that scale is learnt
    at another scale, and training on it here would waste the chip on sizes the network sees at an
    unsuitable resolution. A sample's metainfo gives the range as ``chip_valid_range`` and the
    chip's ``scale_factor``; samples without ``chip_valid_range`` keep all their proposals.
    Prediction is unchanged.
    """

    def loss(self, x: Tuple[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: List[DetDataSample]) -> dict:
        """Filter the proposals by valid range, then compute ``StandardRoIHead``'s losses."""
        rpn_results_list = [
            filter_proposals_by_valid_range(proposals, sample.chip_valid_range, sample.scale_factor)
            if 'chip_valid_range' in sample.metainfo else proposals
            for proposals, sample in zip_strict(rpn_results_list, batch_data_samples)
        ]
        return super().loss(x, rpn_results_list, batch_data_samples)
