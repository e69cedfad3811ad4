"""The training sampler over a SNIPER dataset's chips, sharded across ranks."""
import math
from typing import Hashable, Iterator, List, Optional

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

_DATASET_METHODS = ('set_epoch', 'chip_key', 'chip_image_index', '__len__')


@DATA_SAMPLERS.register_module()
class ChipAwareSampler(Sampler):
    """Yields this rank's share of the current epoch's chips, as chip keys.

    The dataset holds one epoch's chips at a time (SNIPER re-draws the chip stride and the negative
    chips every epoch), so ``set_epoch`` switches the dataset too. The sampler yields
    ``dataset.chip_key(row)``, not row numbers: DataLoader workers (persistent in mmdet configs) keep a
    copy of the dataset from an older epoch, and only a key, which carries its epoch, loads the right
    chip there.

    Order: a permutation of all rows drawn from ``(seed, epoch)``, the same on every rank, or table
    order when ``shuffle`` is False. With ``group_by_image`` the images are permuted instead and each
    image's rows follow one another in table order; in one batch they then go to the same worker,
    which can decode the image once.

    Sharding: the order is cut into ``world_size`` contiguous blocks of ``ceil(n / world_size)`` keys
    (contiguous, so that an image's chips stay on one rank as far as possible), rank ``r`` taking block
    ``r``. The end is padded by repeating the order from its start, as often as needed, so that every
    rank runs the same number of iterations.

    Resume: ``resume(epoch, samples_done)`` makes the next iteration of that epoch skip the first
    ``samples_done`` keys of this rank's block, once (see ``ChipSamplerResumeHook``).

    Args:
        dataset: a ``SniperDataset`` or anything with ``set_epoch(epoch)``, ``__len__``,
            ``chip_image_index()`` (int64 ``[len]``, rows ordered by image) and ``chip_key(row)``.
        shuffle: permute the chips (or images) every epoch. Defaults to True.
        seed: the shuffling seed, a non-negative int; None draws one and shares it across ranks.
        group_by_image: keep each image's chips adjacent. Defaults to False.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: Optional[int] = None,
                 group_by_image: bool = False) -> None:
        missing = [name for name in _DATASET_METHODS if not callable(getattr(dataset, name, None))]
        if missing:
            raise TypeError(f'dataset must have {", ".join(missing)} (a SniperDataset), '
                            f'got {type(dataset).__name__}')
        if not isinstance(shuffle, bool):
            raise TypeError(f'shuffle must be a bool, got {shuffle!r}')
        if not isinstance(group_by_image, bool):
            raise TypeError(f'group_by_image must be a bool, got {group_by_image!r}')
        if seed is None:
            seed = sync_random_seed()
        if not _is_count(seed):
            raise ValueError(f'seed must be a non-negative int or None, got {seed!r}')
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = int(seed)
        self.group_by_image = group_by_image
        self.rank, self.world_size = get_dist_info()
        self._pending_resume = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Makes ``epoch``'s chips current, in the dataset too."""
        if not _is_count(epoch):
            raise ValueError(f'epoch must be a non-negative int, got {epoch!r}')
        self.epoch = int(epoch)
        self.dataset.set_epoch(self.epoch)
        self._check_pending_resume()

    @property
    def num_samples(self) -> int:
        """Keys per rank in a whole epoch: ``ceil(len(dataset) / world_size)``."""
        return math.ceil(len(self.dataset) / self.world_size)

    def resume(self, epoch: int, samples_done: int) -> None:
        """Makes the next iteration of ``epoch`` skip this rank's first ``samples_done`` keys, once."""
        if not _is_count(epoch):
            raise ValueError(f'epoch must be a non-negative int, got {epoch!r}')
        if not _is_count(samples_done):
            raise ValueError(f'samples_done must be a non-negative int, got {samples_done!r}')
        self._pending_resume = (int(epoch), int(samples_done))
        self._check_pending_resume()

    def _resume_is_current(self) -> bool:
        return self._pending_resume is not None and self._pending_resume[0] == self.epoch

    def _check_pending_resume(self) -> None:
        # The block size of a resumed epoch is known only once its chips are current.
        if not self._resume_is_current():
            return
        samples_done = self._pending_resume[1]
        if samples_done > self.num_samples:
            self._pending_resume = None
            raise ValueError(f'samples_done ({samples_done}) exceeds the {self.num_samples} samples '
                             f'of this rank in epoch {self.epoch}')

    def _skip(self) -> int:
        return self._pending_resume[1] if self._resume_is_current() else 0

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng((self.seed, self.epoch))
        if not self.group_by_image:
            return rng.permutation(n)
        image_index = np.asarray(self.dataset.chip_image_index())
        if image_index.shape != (n,):
            raise ValueError(f'dataset.chip_image_index() must have shape ({n},), '
                             f'got {image_index.shape}')
        images, image_slot = np.unique(image_index, return_inverse=True)
        image_rank = rng.permutation(len(images))
        # A stable sort by the image's drawn rank keeps each image's rows in table order.
        return np.argsort(image_rank[image_slot], kind='stable')

    def __iter__(self) -> Iterator[Hashable]:
        # Built eagerly, so that the resume is used up when the DataLoader asks for the iterator,
        # not at its first key.
        skip = self._skip()
        if self._resume_is_current():
            self._pending_resume = None
        block = self.num_samples
        order = np.resize(self._order(), block * self.world_size)
        rows = order[self.rank * block + skip:(self.rank + 1) * block]
        keys: List[Hashable] = [self.dataset.chip_key(int(row)) for row in rows]
        return iter(keys)

    def __len__(self) -> int:
        return self.num_samples - self._skip()


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
