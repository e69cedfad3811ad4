"""SNIPER's training rules as mmdet components, registered on import."""
from .ignore_region_assigner import IgnoreRegionAssigner
from .sniper_tta import SniperTestTimeAug, keep_in_valid_range
from .valid_range_roi_head import ValidRangeRoIHead, filter_proposals_by_valid_range

__all__ = ['IgnoreRegionAssigner', 'SniperTestTimeAug', 'ValidRangeRoIHead', 'filter_proposals_by_valid_range',
           'keep_in_valid_range']
