from .chip_epoch_train_loop import ChipEpochTrainLoop
from .progress_bar_hook import TestProgressBarHook

__all__ = ['ChipEpochTrainLoop', 'TestProgressBarHook']
