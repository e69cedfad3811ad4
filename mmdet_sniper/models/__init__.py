"""SNIPER's training rules as mmdet components, registered on import."""
from .autofocus_tta import AutoFocusTestTimeAug
from .focus_chips import focus_chips
from .focus_pixel_head import AutoFocusRoIHead, FocusPixelHead, focus_pixel_labels
from .ignore_region_assigner import IgnoreRegionAssigner
from .sniper_tta import SniperTestTimeAug, keep_in_valid_range
from .valid_range_roi_head import ValidRangeRoIHead, filter_proposals_by_valid_range

__all__ = ['AutoFocusRoIHead', 'AutoFocusTestTimeAug', 'FocusPixelHead', 'IgnoreRegionAssigner', 'focus_chips',
           'focus_pixel_labels', 'SniperTestTimeAug', 'ValidRangeRoIHead', 'filter_proposals_by_valid_range',
           'keep_in_valid_range']
