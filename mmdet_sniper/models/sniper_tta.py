"""SNIPER's multi-scale test as an mmdet test-time augmentation model: each scale keeps only the
detections in its valid range, then the scales are merged; optionally each scale is run in tiles."""
import math
from contextlib import contextmanager
from numbers import Real
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet_sniper.chips.valid_range import ValidRange
from mmdet_sniper.compat import zip_strict
from mmdet_sniper.ops.grid_cover import candidate_grid

# The authors' merge: Gaussian soft-NMS per class (mmcv's Gaussian decay ignores iou_threshold).
SOFT_NMS_TTA_CFG = dict(nms=dict(type='soft_nms', method='gaussian', sigma=0.55, min_score=1e-3), max_per_img=100)

# The authors' limits on each view before the valid-range filter: every detection scoring above
# 1e-3, no NMS; the merge's soft-NMS and max_per_img then apply once, to all views together. The
# cap only bounds memory: a view of a crowded image keeps its valid detections even when it also
# holds hundreds out of its range.
VIEW_TEST_CFG = dict(score_thr=1e-3, nms=None, max_per_img=1000)

# A tile's detection this close (pixels) to a tile edge inside the view is taken for a cut object.
EDGE_MARGIN = 2


def keep_in_valid_range(bboxes: Tensor, valid_range: Sequence[Real]) -> Tensor:
    """Which detections a scale keeps.

    Args:
        bboxes (Tensor): ``(n, 4)`` xyxy in original-image pixels.
        valid_range (Sequence[Real]): ``(lo, hi)`` in original pixels; -1 leaves a side unbounded
            (:meth:`ValidRange.from_pair`).

    Returns:
        Tensor: bool ``(n,)``, True iff the area ``(x2 - x1) * (y2 - y1)`` is ``> lo**2`` and
        ``<= hi**2`` (:meth:`ValidRange.contains_test_area`); an inverted box has area 0, a box with a
        NaN coordinate is never kept.
    """
    valid = ValidRange.from_pair(valid_range, 'valid_range')
    # Float64: in float32 the area of a box on a bound often rounds to the other side of it.
    boxes = bboxes.double()
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
    return valid.contains_test_area(wh[:, 0] * wh[:, 1])


def _valid_range(sample: DetDataSample) -> Sequence[Real]:
    if 'valid_range' not in sample.metainfo:
        # Without it the view would be merged unfiltered, silently losing SNIPER's scale selection.
        raise KeyError(f'a view of {sample.metainfo.get("img_path", "an image")} has no valid_range in its '
                       'metainfo: make each scale of tta_pipeline a SniperTestScale and add '
                       "'valid_range' to PackDetInputs' meta_keys")
    return sample.valid_range


@MODELS.register_module()
class SniperTestTimeAug(DetTTAModel):
    """``DetTTAModel`` that keeps each view's detections only inside its scale's valid range.

    SNIPER trains each scale only on objects of the sizes it suits (small objects at the finest,
    large at the coarsest), so at test time a scale's detections outside its range are unreliable
    and are dropped before the scales are merged. Each view's ``valid_range`` comes from
    :class:`~mmdet_sniper.transforms.test_scale.SniperTestScale` through ``PackDetInputs``'s
    ``meta_keys``. Each view is predicted under ``view_cfg``, which replaces the score threshold, NMS
    and cap of the detector's own test config (mmdet's 0.05, NMS 0.5 and top 100 would let the
    out-of-range boxes of a crowded view crowd out its valid ones before the filter). The remaining
    detections of all views are un-flipped and merged per class by ``tta_cfg.nms``, keeping the best
    ``tta_cfg.max_per_img``: size it above the most objects an image of the data holds.

    With ``sliced=True``, each view (the whole image at one scale, as without slicing) is cut into
    ``chip_size`` tiles that overlap by ``tile_overlap`` pixels, the last flush with the right and
    bottom edges, and the detector runs on batches of up to ``tiles_per_batch`` tiles: for images
    far larger than a chip (aerial, satellite), whose views would not fit the detector at once. A
    tile's detection within ``EDGE_MARGIN`` px of a tile edge inside the view is dropped: it is
    likely an object cut by the tile, which the overlap puts whole in a neighbouring tile. Tiles
    smaller than ``chip_size`` (a view smaller than a chip) are padded by the detector's data
    preprocessor, after normalisation, as a whole view is.

    Args:
        module (dict | nn.Module): The detector.
        tta_cfg (dict, optional): ``nms`` (``mmcv.ops.batched_nms``'s config) and ``max_per_img``.
            Defaults to the authors' Gaussian soft-NMS, sigma 0.55, score floor 1e-3, 100 per image.
        view_cfg (dict, optional): ``score_thr``, ``nms`` (None: none) and ``max_per_img`` of every
            view, applied to the detector's last stage (``roi_head.test_cfg``, or ``bbox_head.test_cfg``
            of a one-stage detector) while :meth:`test_step` runs (:meth:`view_settings`); the
            detector keeps its own ``test_cfg`` otherwise. Defaults to the authors' 1e-3, no NMS, and a
            cap of 1000. None keeps the detector's own.
        sliced (bool): Run each view in tiles. Defaults to False.
        chip_size (int): Tile side in pixels (sliced only). Defaults to 512.
        tile_overlap (int, optional): Overlap of adjacent tiles in pixels (sliced only). By default,
            per view: the side of a square object of the largest valid size at the view's scale,
            ``ceil(hi * scale_factor)``, plus ``2 * EDGE_MARGIN + 1``, so that a tile holds it whole
            and clear of the edges; at most (and for an unbounded ``hi``) ``chip_size // 2``, beyond
            which the tiles would cost more than 4x the view's pixels. Objects larger than the
            overlap are found only where a tile happens to hold them whole.
        tiles_per_batch (int): Tiles per detector call (sliced only). Defaults to 8.
        data_preprocessor (dict | nn.Module, optional): As ``BaseTTAModel``'s.
    """

    def __init__(self, module: Union[dict, nn.Module], tta_cfg: Optional[dict] = None,
                 view_cfg: Optional[dict] = VIEW_TEST_CFG, sliced: bool = False, chip_size: int = 512,
                 tile_overlap: Optional[int] = None, tiles_per_batch: int = 8,
                 data_preprocessor: Union[dict, nn.Module, None] = None) -> None:
        tta_cfg = ConfigDict(SOFT_NMS_TTA_CFG if tta_cfg is None else tta_cfg)
        missing = sorted({'nms', 'max_per_img'} - set(tta_cfg))
        if missing:
            raise ValueError(f'tta_cfg must hold nms and max_per_img, missing {missing} in {tta_cfg}')
        if view_cfg is not None and set(view_cfg) != {'score_thr', 'nms', 'max_per_img'}:
            raise ValueError(f'view_cfg must hold exactly score_thr, nms and max_per_img, got {dict(view_cfg)}')
        if not isinstance(chip_size, int) or chip_size < 1:
            raise ValueError(f'chip_size must be an int >= 1 (pixels), got {chip_size!r}')
        if tile_overlap is not None and not (isinstance(tile_overlap, int) and 0 <= tile_overlap < chip_size):
            raise ValueError(f'tile_overlap must be None or an int in 0..chip_size-1={chip_size - 1} (pixels), '
                             f'got {tile_overlap!r}')
        if not isinstance(tiles_per_batch, int) or tiles_per_batch < 1:
            raise ValueError(f'tiles_per_batch must be an int >= 1, got {tiles_per_batch!r}')
        super().__init__(tta_cfg=tta_cfg, module=module, data_preprocessor=data_preprocessor)
        if view_cfg is not None and self._last_stage() is None:
            raise ValueError(f'view_cfg needs a detector with roi_head.test_cfg or bbox_head.test_cfg; '
                             f'{type(self.module).__name__} has neither: pass view_cfg=None to keep its own limits')
        self.view_cfg = None if view_cfg is None else ConfigDict(view_cfg)
        self.sliced = sliced
        self.chip_size = chip_size
        self.tile_overlap = tile_overlap
        self.tiles_per_batch = tiles_per_batch

    def _last_stage(self) -> Optional[nn.Module]:
        """The head whose ``test_cfg`` limits the detector's final detections, None if it has none."""
        return next((head for head in (getattr(self.module, name, None) for name in ('roi_head', 'bbox_head'))
                     if getattr(head, 'test_cfg', None) is not None), None)

    @contextmanager
    def view_settings(self) -> Iterator[None]:
        """The detector's last stage under ``view_cfg`` inside the block, under its own ``test_cfg``
        again after it: the detector given is left as it was, to be tested whole or by another model."""
        head = self._last_stage() if self.view_cfg is not None else None
        if head is None:
            yield
            return
        own = head.test_cfg
        head.test_cfg = ConfigDict({**own, **self.view_cfg})
        try:
            yield
        finally:
            head.test_cfg = own

    def test_step(self, data: dict) -> List[DetDataSample]:
        """Predict every view under ``view_cfg`` and merge each image's views.

        Args:
            data (dict): ``inputs``, per view a list of uint8 ``(C, H, W)`` images, and
                ``data_samples``, per view a list of their ``DetDataSample``s, as
                ``pseudo_collate`` batches ``TestTimeAug``'s output.

        Returns:
            list[DetDataSample]: One per image, ``pred_instances`` in original-image pixels.
        """
        with self.view_settings():
            return self.predict_images(data)

    def predict_images(self, data: dict) -> List[DetDataSample]:
        """:meth:`test_step` under the settings in force: every view whole, or in tiles when ``sliced``."""
        if not self.sliced:
            return super().test_step(data)
        if not isinstance(data, dict):
            raise TypeError(f'sliced SniperTestTimeAug takes the dict pseudo_collate makes, got {type(data)}')
        views = [list(zip_strict(inputs, samples))
                 for inputs, samples in zip_strict(data['inputs'], data['data_samples'])]
        self._predict_in_tiles([view for images in views for view in images])
        return self.merge_preds([[sample for _, sample in images] for images in zip(*views)])

    def _merge_single_sample(self, data_samples: List[DetDataSample]) -> DetDataSample:
        for sample in data_samples:
            predictions = sample.pred_instances
            sample.pred_instances = predictions[keep_in_valid_range(predictions.bboxes, _valid_range(sample))]
        # Filtered in place, because when no view has a detection left DetTTAModel returns the first
        # view's prediction as it stands.
        return super()._merge_single_sample(data_samples)

    def _predict_in_tiles(self, views: List[Tuple[Tensor, DetDataSample]]) -> None:
        """Set each view's ``pred_instances`` from its tiles, in original pixels, flipped as the
        view is. Tiles of all views share the detector's batches."""
        results = self._predict_windows(views, [self.tile_grid(sample) for _, sample in views],
                                        [EDGE_MARGIN] * len(views))
        for (_, sample), windows in zip_strict(views, results):
            self.gather_view(sample, windows)

    def gather_view(self, sample: DetDataSample, windows: List[DetDataSample]) -> None:
        """Set a view's ``pred_instances`` from its windows' results (boxes in view pixels): all of
        them, cut to the best ``max_per_img`` (:meth:`keep_view_cap`), in original pixels (as flipped
        as the view); empty when no window ran."""
        if windows:
            predictions = self.keep_view_cap(InstanceData.cat([result.pred_instances for result in windows]))
        else:
            predictions = empty_instances([sample.metainfo], self.module.data_preprocessor.device, 'bbox')[0]
        sx, sy = sample.scale_factor
        predictions.bboxes = predictions.bboxes / predictions.bboxes.new_tensor([sx, sy, sx, sy])
        sample.pred_instances = predictions

    def keep_view_cap(self, predictions: InstanceData) -> InstanceData:
        """A view's detections gathered from its windows, cut to the best ``max_per_img`` of the
        detector's last stage, the cap a view predicted whole has (``view_cfg``'s, 1000 by default).

        Without it a large view multiplies the cap by its number of windows, and the merge's soft-NMS,
        quadratic in the detections, takes over the test's time (on a 4170 px image, 146 thousand
        detections from the 1x view's 729 tiles took 23 s to merge, as long as the tiles themselves).
        """
        if self.view_cfg is not None:
            cap = self.view_cfg.max_per_img
        else:
            head = self._last_stage()
            cap = head.test_cfg.get('max_per_img') if head is not None else None
        if cap is None or len(predictions) <= cap:
            return predictions
        return predictions[predictions.scores.topk(cap).indices]

    def _predict_windows(self, views: List[Tuple[Tensor, DetDataSample]],
                         windows: List[List[Tuple[int, int, int, int]]],
                         edge_margins: List[float]) -> List[List[DetDataSample]]:
        """Run the detector on windows cut from views, up to ``tiles_per_batch`` windows of one shape a call.

        Args:
            views: per view, its ``(C, H, W)`` image and its sample.
            windows: per view, the ``(x1, y1, x2, y2)`` int windows to cut from it, view pixels.
            edge_margins: per view, how close (view pixels) to a window edge inside the view a
                detection is taken for an object cut by the window and dropped.

        Returns:
            list[list[DetDataSample]]: per view, per window, the detector's result, its
            ``pred_instances`` in view pixels.
        """
        # Windows of one shape share a call: a batch is padded to its largest window, and the
        # padding of unequal windows is computed as if it were image (the authors' AutoFocus
        # iterator batches chips sorted by area; on a CPU any padding costs its full price).
        by_shape = {}
        for index, view_windows in enumerate(windows):
            for slot, (x1, y1, x2, y2) in enumerate(view_windows):
                by_shape.setdefault((y2 - y1, x2 - x1), []).append((index, slot, (x1, y1, x2, y2)))
        batches = [jobs[start:start + self.tiles_per_batch] for _, jobs in sorted(by_shape.items())
                   for start in range(0, len(jobs), self.tiles_per_batch)]
        results = [[None] * len(view_windows) for view_windows in windows]
        for batch in batches:
            inputs, samples = [], []
            for index, _, (x1, y1, x2, y2) in batch:
                inputs.append(views[index][0][:, y1:y2, x1:x2])
                # Unscaled window pixels: the detector's predictions stay where the window puts them.
                shape = (y2 - y1, x2 - x1)
                samples.append(DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0))))
            predictions = self.module.test_step(dict(inputs=inputs, data_samples=samples))
            for (index, slot, window), result in zip_strict(batch, predictions):
                result.pred_instances = self._tile_to_view(result.pred_instances, window, views[index][1].img_shape,
                                                           edge_margins[index])
                results[index][slot] = result
        return results

    def tile_grid(self, sample: DetDataSample) -> List[Tuple[int, int, int, int]]:
        """The tiles that sliced inference cuts a view into.

        Args:
            sample (DetDataSample): The view's, with ``img_shape``, ``scale_factor`` and (for the
                default overlap) ``valid_range`` in its metainfo.

        Returns:
            list[tuple]: ``(x1, y1, x2, y2)`` int, in view pixels, row by row.
        """
        height, width = sample.img_shape
        overlap = self.tile_overlap
        if overlap is None:
            hi = ValidRange.from_pair(_valid_range(sample), 'valid_range').hi
            cap = self.chip_size // 2
            overlap = cap if hi is None else min(math.ceil(hi * max(sample.scale_factor)) + 2 * EDGE_MARGIN + 1, cap)
        # SNIPER's candidate chip grid is this tiling: strided windows, the last flush with the far
        # edge, a view smaller than a chip in one window.
        grid, order = candidate_grid(np.array([[width, height]], dtype=np.int64), self.chip_size,
                                     self.chip_size - overlap, np.zeros(1, dtype=np.uint64))
        return [tuple(int(v) for v in tile) for tile in grid[0][np.argsort(order[0])]]

    @staticmethod
    def _tile_to_view(predictions: InstanceData, tile: Tuple[int, int, int, int], view_shape: Tuple[int, int],
                      margin: float) -> InstanceData:
        """A tile's detections, less those within ``margin`` of an inner tile edge, in view pixels."""
        x1, y1, x2, y2 = tile
        height, width = view_shape
        boxes = predictions.bboxes
        cut = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
        if x1 > 0:
            cut |= boxes[:, 0] <= margin
        if y1 > 0:
            cut |= boxes[:, 1] <= margin
        if x2 < width:
            cut |= boxes[:, 2] >= x2 - x1 - margin
        if y2 < height:
            cut |= boxes[:, 3] >= y2 - y1 - margin
        predictions = predictions[~cut]
        predictions.bboxes = predictions.bboxes + predictions.bboxes.new_tensor([x1, y1, x1, y1])
        return predictions
