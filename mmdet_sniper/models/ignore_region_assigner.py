"""An assigner wrapper that turns priors overlapping SNIPER's invalid ground truth into ignores."""
from typing import Optional

from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import get_box_tensor
from mmengine.structures import InstanceData


@TASK_UTILS.register_module()
class IgnoreRegionAssigner(BaseAssigner):
    """Run an inner assigner, then ignore every prior whose IoU with an ignore box is above a threshold.

    In a SNIPER chip the ignore boxes are ground truth that the chip's scale must not learn: objects
    outside the scale's valid range, crowds and boxes cut too small by the chip edge. SNIPER's RPN
    neither rewards nor penalises anchors that match such an object, so an anchor with IoU
    > ``ignore_iou_thr`` to any of them is neither positive nor negative. Without this, an anchor
    on a too-large object would be trained as background at the very scale where that object is
    invalid, teaching the RPN to suppress real objects.

    mmdet's ``MaxIoUAssigner(ignore_iof_thr=...)`` is a different rule: it thresholds IoF, the
    intersection over the prior's (or the ignore box's) own area, so every small anchor inside a
    large invalid object is ignored (IoF 1, however small its IoU), which would leave the RPN
    without negatives on the large objects it should learn to reject at a fine scale.

    Args:
        assigner (dict): Config of the inner assigner, built with ``TASK_UTILS``.
        ignore_iou_thr (float): A prior whose IoU with an ignore box is strictly greater than this
            is ignored. Defaults to 0.3, SNIPER's value.
        iou_calculator (dict): Config of the IoU calculator. Defaults to ``BboxOverlaps2D``.
    """

    def __init__(self, assigner: dict, ignore_iou_thr: float = 0.3,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        self.assigner = TASK_UTILS.build(assigner)
        self.ignore_iou_thr = ignore_iou_thr
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign with the inner assigner, then set ``gt_inds`` and ``labels`` of the priors
        overlapping ignore boxes to -1; ``max_overlaps`` is the inner assigner's.

        Args:
            pred_instances (InstanceData): ``priors``, (n, 4) Tensor or box type, xyxy.
            gt_instances (InstanceData): Ground truth, passed to the inner assigner.
            gt_instances_ignore (InstanceData, optional): ``bboxes``, (k, 4) Tensor or box type,
                xyxy, in the priors' coordinates. Also passed to the inner assigner.

        Returns:
            AssignResult: The inner assigner's result with the ignored priors marked.
        """
        result = self.assigner.assign(pred_instances, gt_instances, gt_instances_ignore, **kwargs)
        if gt_instances_ignore is None:
            return result
        priors = get_box_tensor(pred_instances.priors)
        ignore_boxes = get_box_tensor(gt_instances_ignore.bboxes)
        if len(priors) == 0 or len(ignore_boxes) == 0:
            return result
        overlaps = self.iou_calculator(priors, ignore_boxes.to(priors))
        ignored = overlaps.max(dim=1).values > self.ignore_iou_thr
        result.gt_inds = result.gt_inds.masked_fill(ignored, -1)
        if result.labels is not None:
            result.labels = result.labels.masked_fill(ignored, -1)
        return result
