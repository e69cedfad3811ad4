"""The training sampler over a SNIPER dataset's chips, sharded across ranks."""
import math
from typing import Iterator, Optional

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmdet_sniper.datasets.epoch_chips import ChipKey, is_count


@DATA_SAMPLERS.register_module()
class ChipAwareSampler(Sampler):
    """Yields this rank's share of an epoch's chips, as :class:`ChipKey` s.

    SNIPER makes new chips every epoch (the chip stride is re-drawn and negative chips re-sampled).
    The sampler reads the epoch's chip table from ``dataset.chips`` (an :class:`EpochChips`) and
    changes nothing in the dataset: it yields keys that carry the whole chip, which the dataset loads
    without knowing the epoch. Epochs differ in length; :class:`ChipEpochTrainLoop` counts the
    iterations of every epoch so that the total, the ETA and iteration-based schedules are exact.

    Order: a permutation of all rows drawn from ``(seed, epoch)``, the same on every rank, or table
    order when ``shuffle`` is False. With ``group_by_image`` the images are permuted instead and each
    image's rows follow one another in table order; in one batch they then go to the same worker,
    which can decode the image once.

    Sharding: the order is cut into ``world_size`` contiguous blocks of ``ceil(n / world_size)`` keys
    (contiguous, so that an image's chips stay on one rank as far as possible), rank ``r`` taking block
    ``r``. The end is padded by repeating the order from its start, as often as needed, so that every
    rank runs the same number of iterations.

    Args:
        dataset: a :class:`SniperDataset`, or anything whose ``chips.table(epoch)`` returns the
            :class:`ChipTable` of an epoch.
        shuffle: permute the chips (or images) every epoch. Defaults to True.
        seed: the shuffling seed, a non-negative int; None draws one and shares it across ranks.
        group_by_image: keep each image's chips adjacent. Defaults to False.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: Optional[int] = None,
                 group_by_image: bool = False) -> None:
        chips = getattr(dataset, 'chips', None)
        if not callable(getattr(chips, 'table', None)):
            raise TypeError('dataset must be a SniperDataset (its chips.table(epoch) gives the chips of an epoch), '
                            f'got {type(dataset).__name__}')
        if not isinstance(shuffle, bool):
            raise TypeError(f'shuffle must be a bool, got {shuffle!r}')
        if not isinstance(group_by_image, bool):
            raise TypeError(f'group_by_image must be a bool, got {group_by_image!r}')
        if seed is None:
            seed = sync_random_seed()
        if not is_count(seed):
            raise ValueError(f'seed must be a non-negative int or None, got {seed!r}')
        self.chips = chips
        self.shuffle = shuffle
        self.seed = int(seed)
        self.group_by_image = group_by_image
        self.rank, self.world_size = get_dist_info()
        self.set_epoch(0)

    def set_epoch(self, epoch: int, samples_done: int = 0) -> None:
        """Makes the sampler yield the chips of ``epoch``, after this rank's first ``samples_done`` keys
        (a run resumed within the epoch has trained on those)."""
        if not is_count(epoch):
            raise ValueError(f'epoch must be a non-negative int, got {epoch!r}')
        table = self.chips.table(int(epoch))
        num_samples = math.ceil(len(table) / self.world_size)
        if not is_count(samples_done) or samples_done > num_samples:
            raise ValueError(f'samples_done must be an int in 0..{num_samples} (the samples of this rank in '
                             f'epoch {epoch}), got {samples_done!r}')
        self.epoch, self.table, self.samples_done = int(epoch), table, int(samples_done)

    @property
    def num_samples(self) -> int:
        """Keys per rank in the whole epoch: ``ceil(len(table) / world_size)``."""
        return math.ceil(len(self.table) / self.world_size)

    def _order(self) -> np.ndarray:
        n = len(self.table)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng((self.seed, self.epoch))
        if not self.group_by_image:
            return rng.permutation(n)
        images, image_slot = np.unique(self.table.image_index, return_inverse=True)
        image_rank = rng.permutation(len(images))
        # A stable sort by the image's drawn rank keeps each image's rows in table order.
        return np.argsort(image_rank[image_slot], kind='stable')

    def __iter__(self) -> Iterator[ChipKey]:
        block = self.num_samples
        order = np.resize(self._order(), block * self.world_size)
        rows = order[self.rank * block + self.samples_done:(self.rank + 1) * block]
        # Keys are made as the loader asks for them: an epoch of COCO is ~90k keys per rank of 8.
        table, epoch = self.table, self.epoch
        return (ChipKey.of(table, row, epoch) for row in rows.tolist())

    def __len__(self) -> int:
        """This rank's keys in the whole epoch, ``samples_done`` included: a resumed epoch's batches keep
        their numbers in the logs."""
        return self.num_samples
