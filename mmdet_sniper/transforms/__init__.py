from .crop_chip import CropChip

__all__ = ['CropChip']
