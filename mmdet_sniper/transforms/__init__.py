from .cached_load_image import CachedLoadImageFromFile
from .crop_chip import CropChip
from .test_scale import SniperTestScale, SniperTestViews

__all__ = ['CachedLoadImageFromFile', 'CropChip', 'SniperTestScale', 'SniperTestViews']
