"""CachedLoadImageFromFile: decode an image once for the several chips a worker crops from it."""
from collections import OrderedDict

from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CachedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that keeps the last ``cache_size`` decoded images of this process.

    SNIPER takes several chips from one image; with ``ChipAwareSampler(group_by_image=True)`` they
    reach the same DataLoader worker one after another, and the image is read and decoded once. The
    cached array is handed on read-only, so a transform that would change it in place fails loudly
    instead of corrupting the next chip (``CropChip`` only reads it).

    Args:
        cache_size: decoded images kept, most recently used first; >= 1.
        **kwargs: ``LoadImageFromFile``'s arguments.
    """

    def __init__(self, cache_size: int = 1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f'cache_size must be an int >= 1 (images), got {cache_size!r}')
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        img = self._cache.get(path)
        if img is None:
            results = super().transform(results)
            if results is None:  # ignore_empty
                return None
            img = results['img']
            img.setflags(write=False)
            self._cache[path] = img
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(path)
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', cache_size={self.cache_size})'
