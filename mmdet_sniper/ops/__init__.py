"""SNIPER's compiled chip ops (namespace ``torch.ops.sniper``), with pure-torch references in
:mod:`mmdet_sniper.ops.reference`."""
from .chip_ops import assign_boxes_to_chips, chip_coverage, chip_grid_cover, clip_boxes_to_chips, greedy_chip_cover

__all__ = ['assign_boxes_to_chips', 'chip_coverage', 'chip_grid_cover', 'clip_boxes_to_chips', 'greedy_chip_cover']
