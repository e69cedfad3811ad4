"""The chip-aware training sampler (registered in mmdet's DATA_SAMPLERS)."""
from .chip_aware_sampler import ChipAwareSampler

__all__ = ['ChipAwareSampler']
