"""AutoFocus's test (Najibi, Singh and Davis, ICCV 2019): SNIPER's multi-scale test run coarse to
fine, each finer scale only inside the FocusChips that the scale before it predicted."""
import math
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from torch import Tensor, nn

from mmdet_sniper.compat import zip_strict
from mmdet_sniper.models.focus_chips import focus_chips
from mmdet_sniper.models.sniper_tta import VIEW_TEST_CFG, SniperTestTimeAug

View = Tuple[Tensor, DetDataSample]
Window = Tuple[int, int, int, int]

# The authors' CHIP_HYPERPARAMS (configs/faster/sniper_res101_e2e_autofocus.yml) as this model takes
# them: from the coarsest scale (512 px) to the middle one a threshold of 0.02, from the middle to
# the finest 0.2, both dilated by 3 cells; their minimum chips of 16 and 20 cells of the coarser map
# are, on a COCO image, about 512 px of the finer scale.
AUTHORS_FOCUS_CFGS = (dict(threshold=0.02, dilation=3, min_chip_size=512),
                      dict(threshold=0.2, dilation=3, min_chip_size=512))


@MODELS.register_module()
class AutoFocusTestTimeAug(SniperTestTimeAug):
    """SNIPER's test at a fraction of its cost: the finer scales see only the FocusChips.

    The views of an image (``SniperTestViews``: one per scale, and their flips, each flip handled
    on its own) are taken from the coarsest to the finest. The coarsest is run whole. Its
    detector, whose RoI head is an :class:`~mmdet_sniper.models.focus_pixel_head.AutoFocusRoIHead`,
    also predicts FocusPixels: where objects too small for this scale lie. Those of probability
    ``>= threshold`` are dilated and grouped into chips (:func:`focus_chips`, at least
    ``min_chip_size`` pixels of the finer view a side), and only these chips of the next finer view
    are run, batched ``tiles_per_batch`` at a time. Their FocusPixels, pasted into one map of the
    view, give the chips of the view after it, and so on. A chip's detection within
    ``edge_margin`` original pixels of a chip edge inside the image is dropped, as an object cut by
    the chip (the authors' ``check_valid``, delta 10). Then, as in SNIPER's test, each view keeps
    only its valid range and all views are merged by ``tta_cfg.nms``.

    Chips are cut on the finer view's feature grid (their corners rounded out to multiples of the
    FocusPixel stride), so that each chip's FocusPixels fall on the view's grid; where chips
    overlap, the map keeps the larger probability. Each merged result's metainfo gets
    ``autofocus_pixels`` (pixels the detector ran on, all views) and ``pyramid_pixels`` (the pixels
    of all views whole, SNIPER's test).

    Args:
        module (dict | nn.Module): the detector, with an ``AutoFocusRoIHead``.
        focus_cfgs (Sequence[dict]): one per finer scale, from coarse to fine: how the chips of the
            next finer view are made from this one's FocusPixels. ``threshold`` (a probability in
            [0, 1]), ``dilation`` (int, cells; 1: none) and ``min_chip_size`` (int, pixels of the
            finer view). Defaults to the authors' (``AUTHORS_FOCUS_CFGS``).
        edge_margin (float): see above, original pixels, >= 0. Defaults to the authors' 10.
        tta_cfg, view_cfg, tiles_per_batch, data_preprocessor: as :class:`SniperTestTimeAug`'s.
    """

    def __init__(self, module: Union[dict, nn.Module], focus_cfgs: Sequence[dict] = AUTHORS_FOCUS_CFGS,
                 edge_margin: float = 10.0, tta_cfg: Optional[dict] = None, view_cfg: Optional[dict] = VIEW_TEST_CFG,
                 tiles_per_batch: int = 8, data_preprocessor: Union[dict, nn.Module, None] = None) -> None:
        super().__init__(module, tta_cfg=tta_cfg, view_cfg=view_cfg, tiles_per_batch=tiles_per_batch,
                         data_preprocessor=data_preprocessor)
        focus_head = getattr(getattr(self.module, 'roi_head', None), 'focus_head', None)
        if focus_head is None:
            raise ValueError(f'AutoFocusTestTimeAug needs a detector whose roi_head has a focus_head '
                             f'(AutoFocusRoIHead); {type(self.module).__name__} has none')
        self.stride = focus_head.stride
        if not focus_cfgs:
            raise ValueError('focus_cfgs must hold one dict per scale finer than the coarsest, got none')
        self.focus_cfgs = [self._check_focus_cfg(cfg, f'focus_cfgs[{i}]') for i, cfg in enumerate(focus_cfgs)]
        if not (isinstance(edge_margin, Real) and edge_margin >= 0):
            raise ValueError(f'edge_margin must be a number >= 0 (original pixels), got {edge_margin!r}')
        self.edge_margin = float(edge_margin)

    @staticmethod
    def _check_focus_cfg(cfg: dict, name: str) -> dict:
        if set(cfg) != {'threshold', 'dilation', 'min_chip_size'}:
            raise ValueError(f'{name} must hold exactly threshold, dilation and min_chip_size, got {dict(cfg)}')
        if not (isinstance(cfg['threshold'], Real) and 0 <= cfg['threshold'] <= 1):
            raise ValueError(f'{name}.threshold must be a probability in [0, 1], got {cfg["threshold"]!r}')
        for key in ('dilation', 'min_chip_size'):
            if not (isinstance(cfg[key], int) and cfg[key] >= 1):
                raise ValueError(f'{name}.{key} must be an int >= 1, got {cfg[key]!r}')
        return dict(cfg)

    def predict_images(self, data: dict) -> List[DetDataSample]:
        """Predict every image coarse to fine and merge its views (:meth:`test_step`).

        Args:
            data (dict): as :meth:`SniperTestTimeAug.test_step`'s.

        Returns:
            list[DetDataSample]: one per image, ``pred_instances`` in original-image pixels.
        """
        if not isinstance(data, dict):
            raise TypeError(f'AutoFocusTestTimeAug takes the dict pseudo_collate makes, got {type(data)}')
        images = list(zip(*[list(zip_strict(inputs, samples))
                            for inputs, samples in zip_strict(data['inputs'], data['data_samples'])]))
        pyramids = [pyramid for views in images for pyramid in self._pyramids(views)]
        processed = self._run_coarse_to_fine(pyramids)
        merged = self.merge_preds([[sample for _, sample in views] for views in images])
        for result, views in zip_strict(merged, images):
            ids = {id(sample) for _, sample in views}
            result.set_metainfo(dict(
                autofocus_pixels=sum(pixels for key, pixels in processed.items() if key in ids),
                pyramid_pixels=sum(int(np.prod(sample.img_shape)) for _, sample in views)))
        return merged

    def _pyramids(self, views: Sequence[View]) -> List[List[View]]:
        """An image's views, grouped by flip, each group from the coarsest to the finest."""
        groups: Dict[tuple, List[View]] = {}
        for view in views:
            meta = view[1].metainfo
            groups.setdefault((meta.get('flip', False), meta.get('flip_direction')), []).append(view)
        pyramids = []
        for group in groups.values():
            if len(group) != len(self.focus_cfgs) + 1:
                raise ValueError(f'{group[0][1].metainfo.get("img_path", "an image")} has {len(group)} scales per '
                                 f'flip, but focus_cfgs holds {len(self.focus_cfgs)} steps: give one focus_cfg per '
                                 'scale but the coarsest')
            pyramids.append(sorted(group, key=lambda view: view[1].scale_factor[0] * view[1].scale_factor[1]))
        return pyramids

    def _run_coarse_to_fine(self, pyramids: List[List[View]]) -> Dict[int, int]:
        """Set every view's ``pred_instances`` (original pixels); returns the pixels run per view,
        keyed by ``id`` of its sample."""
        processed = {}
        device = self.module.data_preprocessor.device
        focus_maps: List[Optional[Tensor]] = [None] * len(pyramids)
        for level in range(len(pyramids[0]) if pyramids else 0):
            views = [pyramid[level] for pyramid in pyramids]
            if level == 0:
                windows = [[(0, 0, sample.img_shape[1], sample.img_shape[0])] for _, sample in views]
            else:
                windows = [self.chips_for(pyramid[level - 1][1], focus_map, pyramid[level][1],
                                          self.focus_cfgs[level - 1])
                           for pyramid, focus_map in zip_strict(pyramids, focus_maps)]
            margins = [self.edge_margin * max(sample.scale_factor) for _, sample in views]
            results = self._predict_windows(views, windows, margins)
            for index, ((_, sample), view_windows, view_results) in enumerate(zip_strict(views, windows, results)):
                processed[id(sample)] = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in view_windows)
                self.gather_view(sample, view_results)
                focus_maps[index] = self._paste_focus(sample, view_windows, view_results, device)
        return processed

    def _paste_focus(self, sample: DetDataSample, windows: List[Window], results: List[DetDataSample],
                     device: torch.device) -> Tensor:
        """One FocusPixel map of the view from its windows' maps (the larger where they overlap);
        0 where no window ran."""
        height, width = sample.img_shape
        focus = torch.zeros((-(-height // self.stride), -(-width // self.stride)), device=device)
        for (x1, y1, _, _), result in zip_strict(windows, results):
            part = result.pred_focus
            top, left = y1 // self.stride, x1 // self.stride
            region = focus[top:top + part.shape[0], left:left + part.shape[1]]
            region.copy_(torch.maximum(region, part[:region.shape[0], :region.shape[1]]))
        return focus

    def chips_for(self, coarse: DetDataSample, focus: Tensor, fine: DetDataSample, cfg: dict) -> List[Window]:
        """The chips of the finer view ``fine``, from the FocusPixels ``focus`` of the coarser view.

        Args:
            coarse (DetDataSample): the coarser view's (``scale_factor``, ``img_shape``).
            focus (Tensor): ``(h, w)`` its FocusPixel probabilities, cells of ``self.stride`` pixels.
            fine (DetDataSample): the finer view's.
            cfg (dict): the step's ``threshold``, ``dilation`` and ``min_chip_size``.

        Returns:
            list[tuple]: ``(x1, y1, x2, y2)`` int chips in pixels of the finer view, corners at
            multiples of the stride or on the view's edges, at least ``min_chip_size`` a side where
            the view allows.
        """
        height, width = fine.img_shape
        # Finer-view pixels per coarser-view pixel, per axis.
        ratio = np.asarray(fine.scale_factor, dtype=np.float64) / np.asarray(coarse.scale_factor, dtype=np.float64)
        min_cells = tuple(int(math.ceil(cfg['min_chip_size'] / (self.stride * r))) for r in ratio)
        cells = focus_chips(focus.float().cpu().numpy(), cfg['threshold'], cfg['dilation'], min_cells)
        chips = []
        for x1, y1, x2, y2 in (cells * self.stride * np.tile(ratio, 2)).tolist():
            x1, x2 = self._span(x1, x2, width, cfg['min_chip_size'])
            y1, y2 = self._span(y1, y2, height, cfg['min_chip_size'])
            chips.append((x1, y1, x2, y2))
        return chips

    def _span(self, start: float, end: float, limit: int, min_size: int) -> Tuple[int, int]:
        """``[start, end)`` with its ends rounded out to the stride and cut at ``limit``; an end
        cut moves the start back to keep ``min_size`` (the authors' rule at the image edge)."""
        end = min(int(math.ceil(end / self.stride)) * self.stride, limit)
        start = min(start, end - min_size) if end == limit else start
        return int(max(start, 0) // self.stride * self.stride), end
