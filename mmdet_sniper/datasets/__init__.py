from .epoch_chips import ChipKey, EpochChips
from .sniper_dataset import SniperDataset

__all__ = ['ChipKey', 'EpochChips', 'SniperDataset']
