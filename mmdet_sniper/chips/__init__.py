"""SNIPER chip generation (docs/chip_generation.md)."""
from .generator import ChipGenerator
from .scales import ScalePyramid, epoch_stride
from .table import ChipTable

__all__ = ['ChipGenerator', 'ChipTable', 'ScalePyramid', 'epoch_stride']
