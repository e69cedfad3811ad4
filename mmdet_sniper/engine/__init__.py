from .chip_sampler_resume_hook import ChipSamplerResumeHook
from .progress_bar_hook import TestProgressBarHook

__all__ = ['ChipSamplerResumeHook', 'TestProgressBarHook']
