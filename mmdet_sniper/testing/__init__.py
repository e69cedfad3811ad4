"""Synthetic inputs for tests and benchmarks."""
from .synthetic import ChipWorkload, random_chip_workload

__all__ = ['ChipWorkload', 'random_chip_workload']
