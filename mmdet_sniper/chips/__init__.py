"""SNIPER chip generation (docs/chip_generation.md)."""
from .generator import ChipGenerator
from .scales import ScalePyramid, epoch_stride
from .table import ChipTable
from .valid_range import ValidRange

__all__ = ['ChipGenerator', 'ChipTable', 'ScalePyramid', 'ValidRange', 'epoch_stride']
