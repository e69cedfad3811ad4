from .sniper_dataset import ChipKey, SniperDataset

__all__ = ['ChipKey', 'SniperDataset']
