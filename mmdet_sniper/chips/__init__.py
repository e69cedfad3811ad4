"""SNIPER chip generation (docs/chip_generation.md)."""
from .generator import ChipGenerator
from .ragged import RaggedArray
from .scales import ScalePyramid, epoch_stride
from .table import ChipTable
from .valid_range import ValidRange

__all__ = ['ChipGenerator', 'ChipTable', 'RaggedArray', 'ScalePyramid', 'ValidRange', 'epoch_stride']
