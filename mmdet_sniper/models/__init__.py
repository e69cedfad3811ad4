"""SNIPER's training rules as mmdet components, registered on import."""
from .ignore_region_assigner import IgnoreRegionAssigner
from .valid_range_roi_head import ValidRangeRoIHead, filter_proposals_by_valid_range

__all__ = ['IgnoreRegionAssigner', 'ValidRangeRoIHead', 'filter_proposals_by_valid_range']
