"""Runner hooks (registered in mmdet's HOOKS)."""
from .chip_sampler_resume_hook import ChipSamplerResumeHook

__all__ = ['ChipSamplerResumeHook']
