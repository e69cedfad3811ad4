from .cached_load_image import CachedLoadImageFromFile
from .crop_chip import CropChip

__all__ = ['CachedLoadImageFromFile', 'CropChip']
