from .chip_epoch_train_loop import ChipEpochTrainLoop
from .non_finite_loss_hook import StopOnNonFiniteLossHook
from .progress_bar_hook import TestProgressBarHook

__all__ = ['ChipEpochTrainLoop', 'StopOnNonFiniteLossHook', 'TestProgressBarHook']
