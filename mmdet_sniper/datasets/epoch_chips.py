"""The chips of every training epoch of a dataset, and the key that names one chip."""
import hashlib
import json
import logging
import os
import os.path as osp
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

import mmdet_sniper
from mmdet_sniper.chips import ChipGenerator, ChipTable, RaggedArray
from mmdet_sniper.chips.cache import load_or_make

# Bump when chip generation changes, so that cached chip tables of older versions are not reused.
CHIP_CACHE_FORMAT = 2


class ChipKey(NamedTuple):
    """Everything needed to load one chip: the sampler hands these to the data loader, and
    :class:`SniperDataset` turns one into a training sample without knowing the epoch's table."""
    epoch: int
    image_index: int
    scale_index: int
    chip: Tuple[float, float, float, float]  # x1, y1, x2, y2 in the scaled image's pixels
    scale_factor: Tuple[float, float]  # sx, sy from the original image to the scaled one
    positive: bool
    stride: int

    @classmethod
    def of(cls, table: ChipTable, row: int, epoch: int) -> 'ChipKey':
        """The key of row ``row`` of ``table``, the chip table of ``epoch``."""
        if not -len(table) <= row < len(table):
            raise IndexError(f'chip row {row} out of range for the {len(table)} chips of epoch {epoch}')
        return cls(epoch=int(epoch), image_index=int(table.image_index[row]),
                   scale_index=int(table.scale_index[row]), chip=tuple(float(v) for v in table.chips[row]),
                   scale_factor=tuple(float(v) for v in table.scale_factor[row]),
                   positive=bool(table.positive[row]), stride=int(table.stride))


def is_count(value) -> bool:
    """A non-negative int (numpy's too), not a bool: an epoch, a seed, a number of samples."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0


def default_cache_dir() -> str:
    return osp.join(os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')), 'mmdet_sniper', 'chips')


class EpochChips:
    """The chip table of each epoch of one set of images, made on first use.

    SNIPER makes new chips every epoch: the chip stride is re-drawn where it is a range, and with
    proposals the epoch's negative chips are sampled. Every epoch's table is a pure function of the
    images' sizes and boxes, the proposals, the generator's settings, ``seed`` and the epoch, so each
    rank and each restart computes the same one. Tables are cached on disk, keyed by a digest of all of
    these, so a restart loads them instead; only the last table asked for is kept in memory.

    Args:
        generator: makes the chips.
        image_sizes: int ``[I, 2]`` (width, height) of the original images.
        gt_boxes: per image, float32 ``[N, 4]`` ground-truth boxes ``(x1, y1, x2, y2)`` in original pixels,
            as a :class:`RaggedArray` (or a list of arrays, packed into one).
        gt_crowd: per image, bool ``[N]``: crowd boxes, never targets; likewise.
        proposals: per image, float32 ``[P, 4]`` proposals to mine negative chips from (a list may hold
            ``[P, 5]``, the score is not used); None: positive chips only.
        seed: names the chips of every epoch.
        cache_dir: the folder of the cached tables; None: no cache.
        image_names: per image, the name used in reports (e.g. its path).
    """

    def __init__(self, generator: ChipGenerator, image_sizes: np.ndarray, gt_boxes: Sequence[np.ndarray],
                 gt_crowd: Sequence[np.ndarray], proposals: Optional[Sequence[np.ndarray]], seed: int,
                 cache_dir: Optional[str], image_names: Sequence[str]):
        self.generator = generator
        self.image_sizes = np.asarray(image_sizes, dtype=np.int64)
        self.gt_boxes = _ragged(gt_boxes, np.float32, (4,))
        self.gt_crowd = _ragged(gt_crowd, bool)
        if proposals is not None and not isinstance(proposals, RaggedArray):
            proposals = [np.asarray(p, np.float32).reshape(-1, np.shape(p)[-1] if np.size(p) else 4)[:, :4]
                         for p in proposals]
        self.proposals = None if proposals is None else _ragged(proposals, np.float32, (4,))
        self.seed = seed
        self.cache_dir = cache_dir
        self.image_names = image_names
        self._digest = self._inputs_digest()
        self._last: Optional[Tuple[int, ChipTable]] = None
        self._reported: set = set()

    def __getstate__(self) -> dict:
        # Data loader workers receive the dataset, and with it this object; they never need a table.
        return dict(self.__dict__, _last=None)

    def cache_path(self, epoch: int) -> Optional[str]:
        """The cache file of an epoch's chip table, or None without a cache."""
        if self.cache_dir is None:
            return None
        return osp.join(self.cache_dir, f'{self._digest}-epoch{epoch}.npz')

    def table(self, epoch: int) -> ChipTable:
        """The chips of ``epoch``. The first time this process makes or loads an epoch's table, its
        statistics and the boxes it does not train on are logged."""
        if not is_count(epoch):
            raise ValueError(f'epoch must be a non-negative int, got {epoch!r}')
        epoch = int(epoch)
        if self._last is not None and self._last[0] == epoch:
            return self._last[1]
        path = self.cache_path(epoch)
        if path is None:
            table, source = self._generate(epoch), 'generated'
        else:
            table, made = load_or_make(path, 'chip', lambda p: self._load_cached(p, epoch),
                                       lambda: self._generate(epoch), ChipTable.save)
            source = 'generated' if made else f'loaded from {path}'
        if epoch not in self._reported:
            self._reported.add(epoch)
            print_log(f'SNIPER chips of epoch {epoch} ({source}):\n{table.format_summary()}', logger='current')
            self._report_boxes(table)
        self._last = (epoch, table)
        return table

    def _load_cached(self, path: str, epoch: int) -> ChipTable:
        table = ChipTable.load(path)
        made_for = (table.settings.get('seed'), table.settings.get('epoch'), table.num_images)
        wanted = (self.seed, epoch, len(self.image_sizes))
        if made_for != wanted:
            raise ValueError(f'made for (seed, epoch, images) {made_for}, not {wanted}')
        return table

    def _generate(self, epoch: int) -> ChipTable:
        return self.generator.generate_epoch(self.image_sizes, self.gt_boxes, self.gt_crowd, self.proposals,
                                             seed=self.seed, epoch=epoch)

    def _report_boxes(self, table: ChipTable) -> None:
        for listed, what in ((table.uncovered_boxes, 'no positive chip holds'),
                             (table.boxes_without_scale, 'are valid at no scale (empty, outside the image '
                                                         'or between the valid ranges) and')):
            if len(listed):
                examples = '; '.join(f'{self.image_names[i]} box {j}' for i, j in listed[:5].tolist())
                print_log(f'{len(listed)} ground-truth boxes {what} are not trained on, e.g. {examples}',
                          logger='current', level=logging.WARNING)

    def _inputs_digest(self) -> str:
        digest = hashlib.sha1()
        settings = dict(self.generator.settings(), seed=self.seed, format=CHIP_CACHE_FORMAT,
                        version=mmdet_sniper.__version__)
        digest.update(json.dumps(settings, sort_keys=True).encode())
        ragged = [self.gt_boxes, self.gt_crowd] + ([self.proposals] if self.proposals is not None else [])
        for rows in ragged:
            # Cached proposals are named by their cache key, a gigabyte's map is not read for this.
            arrays = [rows.digest.encode()] if rows.digest else [rows.offsets, rows.flat]
            for array in arrays:
                digest.update(np.ascontiguousarray(array) if isinstance(array, np.ndarray) else array)
        digest.update(np.ascontiguousarray(self.image_sizes))
        return digest.hexdigest()[:20]


def _ragged(rows, dtype, row_shape: tuple = ()) -> RaggedArray:
    return rows if isinstance(rows, RaggedArray) else RaggedArray.from_list(rows, dtype, row_shape)
