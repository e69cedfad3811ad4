"""SNIPER chip generation: positive chips that cover the ground truth of every scale, negative chips
mined from proposals (docs/chip_generation.md).

Images are processed in batches: the boxes of every (image, scale) pair of a batch are padded into
one tensor and go through the ops together, so the per-image Python cost is a few array slices.
"""
import multiprocessing
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import torch

from mmdet_sniper.ops import assign_boxes_to_chips, chip_grid_cover
from mmdet_sniper.ops.splitmix64 import derive_key, nth
from .ragged import RaggedArray
from .scales import ScalePyramid, ScaleSpec, check_chip_stride, epoch_stride
from .table import ChipTable, concat_rows

# Streams of the SplitMix64 keys (docs/chip_generation.md, section 3).
POSITIVE_STREAM, NEGATIVE_STREAM, SAMPLING_STREAM = 0, 1, 2

# A call goes to forked workers only where each gets this many batches: fewer do not repay the fork.
BATCHES_PER_WORKER = 4

T = TypeVar('T')


class _Boxes:
    """Ragged per-image boxes as one flat float32 ``[T, 4]`` array, clipped to their images.

    They may be the boxes of images ``first_image ..`` of a call only; ``image`` then counts from
    ``first_image``'s entry, errors name the call's images.
    """

    def __init__(self, boxes_list: Sequence, image_sizes: np.ndarray, name: str, min_columns: int = 4,
                 max_columns: int = 4, first_image: int = 0):
        _check_per_image(boxes_list, len(image_sizes), name)
        self.first_image = first_image
        if isinstance(boxes_list, RaggedArray):
            flat = boxes_list.flat
            if flat.ndim != 2 or not min_columns <= flat.shape[1] <= max_columns:
                expected = '[T, 4]' if max_columns == 4 else f'[T, {min_columns}..{max_columns}]'
                raise ValueError(f'{name}.flat must have shape {expected}, got {tuple(flat.shape)}')
            self._set(_float32_copy(flat[:, :4]), boxes_list.counts, image_sizes, name)
            return
        arrays = [np.asarray(boxes, dtype=np.float32) for boxes in boxes_list]
        shapes = {a.shape[1:] if a.size else (4,) for a in arrays}
        if not all(len(shape) == 1 and min_columns <= shape[0] <= max_columns for shape in shapes):
            i = next(i for i, a in enumerate(arrays)
                     if a.size and (a.ndim != 2 or not min_columns <= a.shape[1] <= max_columns))
            expected = '[N, 4]' if max_columns == 4 else f'[N, {min_columns}..{max_columns}]'
            raise ValueError(f'{name}[{first_image + i}] must have shape {expected} (x1, y1, x2, y2'
                             f'{", score" if max_columns > 4 else ""}), got {tuple(arrays[i].shape)}')
        counts = np.array([len(a) if a.size else 0 for a in arrays], dtype=np.int64)
        if len(shapes) == 1:  # one column count: slice once, after concatenating
            columns = next(iter(shapes))[0]
            boxes = np.concatenate([a.reshape(-1, columns) for a in arrays])[:, :4] if arrays else None
        else:
            boxes = np.concatenate([a.reshape(-1, a.shape[1] if a.size else 4)[:, :4] for a in arrays])
        boxes = np.ascontiguousarray(boxes) if boxes is not None else np.zeros((0, 4), np.float32)
        self._set(boxes, counts, image_sizes, name)

    def _set(self, boxes: np.ndarray, counts: np.ndarray, image_sizes: np.ndarray, name: str) -> None:
        """Takes ``boxes`` (float32 ``[T, 4]``, owned: clipped in place), ``counts`` rows per image."""
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        if not np.isfinite(boxes).all():
            row = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
            image = int(np.searchsorted(self.offsets, row, side='right') - 1)
            raise ValueError(f'{name}[{self.first_image + image}] (image {self.first_image + image}) has a '
                             f'non-finite coordinate in box {row - self.offsets[image]}: {boxes[row].tolist()}')
        self.image = np.repeat(np.arange(len(counts)), self.counts)
        self.index_in_image = np.arange(len(boxes)) - self.offsets[self.image]
        limits = np.repeat(np.tile(image_sizes, 2).astype(np.float32), counts, axis=0)
        np.clip(boxes, 0, limits, out=boxes)
        self.boxes = boxes

    def extend(self, other: '_Boxes', keep: np.ndarray) -> None:
        """Appends the ``keep`` boxes of ``other`` (the same images) after each image's own boxes."""
        other_image = np.compress(keep, other.image)
        other_counts = np.bincount(other_image, minlength=len(self.counts))
        counts = self.counts + other_counts
        offsets = np.concatenate([[0], np.cumsum(counts)])
        # Both are ordered by image: each image's own rows first, then its rows of `other`.
        own_rows = offsets[self.image] + self.index_in_image
        other_first = np.cumsum(other_counts) - other_counts
        other_rows = (offsets[other_image] + self.counts[other_image]
                      + np.arange(len(other_image)) - other_first[other_image])
        boxes = np.empty((len(own_rows) + len(other_rows), 4), np.float32)
        _row_items(boxes)[own_rows] = _row_items(self.boxes)
        _row_items(boxes)[other_rows] = _row_items(np.compress(keep, other.boxes, axis=0))
        self.boxes, self.counts, self.offsets = boxes, counts, offsets
        self.image = np.repeat(np.arange(len(counts)), counts)
        self.index_in_image = np.arange(len(boxes)) - offsets[self.image]

    def rows_of_images(self, start: int, stop: int) -> slice:
        """The rows of the call's images ``start .. stop - 1``."""
        return slice(int(self.offsets[start - self.first_image]), int(self.offsets[stop - self.first_image]))


def _check_per_image(values: Sequence, num_images: int, name: str) -> None:
    if len(values) != num_images:
        raise ValueError(f'{name} must hold one entry per image ({num_images}), got {len(values)}')


def _images(values: Sequence, start: int, stop: int) -> Sequence:
    """The entries of images ``start .. stop - 1`` of a per-image sequence, without copying a
    :class:`RaggedArray`'s rows."""
    return values.images(start, stop) if isinstance(values, RaggedArray) else values[start:stop]


@dataclass(frozen=True)
class _ImageBatch:
    """Images ``start .. stop - 1`` of a call, with their boxes and the epoch's pyramid: what each
    step of chip generation needs about them. Image indices are the call's, not the batch's."""
    start: int
    stop: int
    all_boxes: _Boxes  # the boxes of every image of the call; the batch's are the rows `rows`
    scaled_sizes: np.ndarray  # int64 [I, S, 2] (width, height) of every image of the call at each scale
    factors: np.ndarray  # float32 [I, S, 2] (sx, sy), likewise
    stride: int
    seed: int
    epoch: int

    @property
    def num_images(self) -> int:
        return self.stop - self.start

    @property
    def rows(self) -> slice:
        return self.all_boxes.rows_of_images(self.start, self.stop)

    @property
    def boxes(self) -> np.ndarray:
        """float32 ``[E, 4]``: the batch's boxes in original pixels."""
        return self.all_boxes.boxes[self.rows]

    @property
    def image(self) -> np.ndarray:
        """int64 ``[E]``: the image of each of :attr:`boxes`."""
        return self.all_boxes.image[self.rows] + self.all_boxes.first_image

    def at_scales(self, valid: np.ndarray) -> List['_AtScale']:
        """Per scale, the boxes ``valid[s]`` marks there, in the scaled image's pixels."""
        boxes, image = self.boxes, self.image
        out = []
        for s in range(valid.shape[0]):
            rows = np.flatnonzero(valid[s])
            box_image = np.take(image, rows)
            # Per box, its image's factors and scaled size, repeated (the boxes are ordered by image),
            # each its own contiguous array: numpy's arithmetic on strided columns is several times slower.
            counts = np.bincount(box_image - self.start, minlength=self.num_images)
            factors = self.factors[self.start:self.stop, s]
            sizes = self.scaled_sizes[self.start:self.stop, s].astype(np.float32)
            scaled = _scaled(np.take(boxes, rows, axis=0), np.repeat(np.tile(factors, 2), counts, axis=0),
                             np.repeat(np.tile(sizes, 2), counts, axis=0))
            out.append(_AtScale(rows, box_image, np.repeat(factors, counts, axis=0), scaled))
        return out

    def per_box(self, per_image: np.ndarray) -> np.ndarray:
        """``per_image`` (``[I, ...]``, rows of the call's images) repeated for each of :attr:`boxes`."""
        first = self.all_boxes.first_image
        counts = self.all_boxes.counts[self.start - first:self.stop - first]
        return np.repeat(per_image[self.start:self.stop], counts, axis=0)


class _AtScale(NamedTuple):
    """Some of a batch's boxes at one scale, ordered by image: their rows in the batch, their images
    (the call's indices), their images' float32 scale factors ``[E_s, 2]`` and the boxes in the scaled
    image's pixels (float32 ``[E_s, 4]``)."""
    rows: np.ndarray
    image: np.ndarray
    factors: np.ndarray
    boxes: np.ndarray

    def select(self, keep: np.ndarray) -> '_AtScale':
        """The boxes ``keep`` (a mask of :attr:`rows`) marks."""
        return _AtScale(*(np.compress(keep, values, axis=0) for values in self))


def _pack(item_of: np.ndarray, values: np.ndarray, num_items: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pads per-item rows, ordered by item (``item_of`` non-decreasing, as boxes and chip tables are by
    image), into ``[num_items, max_rows, ...]`` (zeros, i.e. empty boxes, as padding), keeping each
    item's rows in their order. Returns the padded array and each row's place in it as an index of its
    first two dimensions flattened."""
    counts = np.bincount(item_of, minlength=num_items)
    width = int(counts.max(initial=0))
    place = item_of * width + np.arange(len(item_of)) - (np.cumsum(counts) - counts)[item_of]
    padded = np.zeros((num_items * width,) + values.shape[1:], dtype=values.dtype)
    _row_items(padded)[place] = _row_items(values)
    return padded.reshape((num_items, width) + values.shape[1:]), place


def _scaled(boxes: np.ndarray, factors: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Boxes (float32 ``[E, 4]``, owned: scaled in place) in the scaled image: each coordinate times
    its axis's float32 factor (``factors`` ``[E, 4]``: sx, sy, sx, sy), in float32, then clipped to the
    scaled image (``sizes`` ``[E, 4]``: Ws, Hs, Ws, Hs): ``W * sx`` can round past ``Ws`` by more than
    ``min_iof`` forgives a narrow box on the far border."""
    boxes *= factors
    return np.minimum(boxes, sizes, out=boxes)


def _row_items(rows: np.ndarray) -> np.ndarray:
    """A C-contiguous ``[N, ...]`` array as ``N`` opaque items, one per row, sharing its memory: numpy
    scatters one-item rows about 8x faster than the rows of a 2-D array."""
    row_size = int(np.prod(rows.shape[1:]))
    row_type = np.dtype((np.void, rows.dtype.itemsize * row_size))
    return rows.reshape(len(rows), row_size).view(row_type).reshape(len(rows))


def _float32_copy(values: np.ndarray) -> np.ndarray:
    """``values`` as a new float32 array; float16 through torch, whose conversion is about 18x numpy's
    speed."""
    if values.dtype == np.float16:
        return torch.from_numpy(np.array(values)).float().numpy()
    return np.array(values, dtype=np.float32)


class ChipGenerator:
    """Generates SNIPER's positive and negative chips for many images at once.

    Args:
        scales, valid_ranges, chip_size: the scale pyramid (see :class:`ScalePyramid`). Defaults are
            the authors' COCO setting.
        chip_stride: an int, or ``(lo, hi)`` to draw the stride of each epoch from ``lo .. hi-1``
            (the authors redraw 56..59 every epoch; the paper states 32).
        min_iof: the fraction of a box inside a chip for it to count as inside.
        neg_thresholds: a negative chip must hold more than this many proposals: (finest scale, the
            other scales).
        neg_chips_per_image: negative chips drawn per image and epoch from its pool.
        device: where the ops run, ``'cpu'`` or a CUDA device.
        images_per_batch: images whose boxes go through the ops together; bounds memory.
        workers: processes that share the batches of a large call on the CPU (forked, so that they read
            the inputs without a copy); the result is the same for any number. None: one per CPU this
            process may use, at most 8. Calls of fewer than ``BATCHES_PER_WORKER`` batches per worker,
            on CUDA, inside a daemonic process (a data loader worker) or where ``fork`` is not
            available, run in this process.
    """

    def __init__(self, scales: Sequence[ScaleSpec] = (3.0, 1.667, 512),
                 valid_ranges: Sequence[Tuple[float, float]] = ((-1, 80), (32, 150), (120, -1)),
                 chip_size: int = 512, chip_stride: Union[int, Tuple[int, int]] = (56, 60),
                 min_iof: float = 1 - 1e-6, neg_thresholds: Tuple[int, int] = (25, 10),
                 neg_chips_per_image: int = 2, device: Union[str, torch.device] = 'cpu',
                 images_per_batch: int = 256, workers: Optional[int] = None):
        self.pyramid = ScalePyramid(scales, valid_ranges, chip_size)
        check_chip_stride(chip_stride, chip_size)
        if not 0 < min_iof <= 1:
            raise ValueError(f'min_iof must be in (0, 1], got {min_iof}')
        if len(neg_thresholds) != 2 or min(neg_thresholds) < 0:
            raise ValueError(f'neg_thresholds must be (finest, other scales) counts >= 0, got {neg_thresholds}')
        if neg_chips_per_image < 0:
            raise ValueError(f'neg_chips_per_image must be >= 0, got {neg_chips_per_image}')
        if images_per_batch < 1:
            raise ValueError(f'images_per_batch must be >= 1, got {images_per_batch}')
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f'workers must be an int >= 1 or None (one per CPU, at most 8), got {workers!r}')
        self.chip_size = chip_size
        self.chip_stride = tuple(chip_stride) if isinstance(chip_stride, (tuple, list)) else chip_stride
        self.min_iof = min_iof
        self.neg_thresholds = tuple(neg_thresholds)
        self.neg_chips_per_image = neg_chips_per_image
        self.device = torch.device(device)
        self.images_per_batch = images_per_batch
        self.workers = workers if workers is not None else min(8, _usable_cpus())

    @property
    def num_scales(self) -> int:
        return self.pyramid.num_scales

    def settings(self) -> dict:
        return dict(scales=self.pyramid.scales, valid_ranges=self.pyramid.valid_ranges, chip_size=self.chip_size,
                    chip_stride=self.chip_stride, min_iof=self.min_iof, neg_thresholds=self.neg_thresholds,
                    neg_chips_per_image=self.neg_chips_per_image)

    def epoch_stride(self, seed: int, epoch: int) -> int:
        return epoch_stride(self.chip_stride, seed, epoch)

    # ---------------------------------------------------------------- positive chips

    def generate_positive(self, image_sizes, gt_boxes_list: Sequence, gt_crowd_list: Optional[Sequence] = None,
                          *, seed: int = 0, epoch: int = 0, progress: bool = False) -> ChipTable:
        """Positive chips: per image and scale, the greedy cover of the ground-truth boxes valid there.

        Args:
            image_sizes: ``[I, 2]`` (width, height) of the original images, integers >= 1.
            gt_boxes_list: per image, ``[N_i, 4]`` ground-truth boxes in original pixels (a list of
                arrays or a :class:`RaggedArray`).
            gt_crowd_list: per image, ``[N_i]`` bools; crowd boxes are never targets. None: no crowd.
            seed, epoch: name the stride and the candidate shuffles (the same on every rank).
            progress: show a progress bar.

        Returns:
            The table of positive chips; boxes no chip holds are listed in it, not dropped.
        """
        sizes = self._check_image_sizes(image_sizes)
        chips_of, table = self._positive_work(sizes, gt_boxes_list, gt_crowd_list, seed, epoch)
        return table(self._map_batches(chips_of, len(sizes), progress))

    def _positive_work(self, sizes: np.ndarray, gt_boxes_list, gt_crowd_list, seed: int, epoch: int):
        """The positive chips of a call batch by batch: ``chips_of(start, stop)`` makes a batch's part
        (its chip rows, uncovered and without-scale boxes), ``table(parts)`` the table of the parts."""
        gt = _Boxes(gt_boxes_list, sizes, 'gt_boxes_list')
        crowd = self._crowd_flags(gt_crowd_list, gt)
        stride = self.epoch_stride(seed, epoch)
        scaled_sizes, factors = self.pyramid.geometry(sizes)

        def chips_of(start: int, stop: int):
            batch = _ImageBatch(start=start, stop=stop, all_boxes=gt, scaled_sizes=scaled_sizes, factors=factors,
                                stride=stride, seed=seed, epoch=epoch)
            target = ~crowd[batch.rows]
            valid = self._valid_at_scales(batch) & target[None]
            part, covered = self._cover(batch, batch.at_scales(valid), POSITIVE_STREAM, [1] * self.num_scales)
            valid_somewhere = valid.any(0)
            boxes_at = np.stack([batch.image, gt.index_in_image[batch.rows]], axis=1)
            return part, boxes_at[valid_somewhere & ~covered.any(0)], boxes_at[target & ~valid_somewhere]

        def table(parts) -> ChipTable:
            rows, uncovered, without_scale = ([part[i] for part in parts] for i in range(3))
            return ChipTable(**concat_rows(rows), image_sizes=sizes, scaled_sizes=scaled_sizes, stride=stride,
                             uncovered_boxes=np.concatenate(uncovered or [np.zeros((0, 2), np.int64)]),
                             boxes_without_scale=np.concatenate(without_scale or [np.zeros((0, 2), np.int64)]),
                             settings=dict(self.settings(), seed=seed, epoch=epoch))

        return chips_of, table

    # ---------------------------------------------------------------- negative chips

    def generate_negative(self, image_sizes, proposals_list: Sequence, positive: ChipTable,
                          gt_boxes_list: Optional[Sequence] = None, gt_crowd_list: Optional[Sequence] = None,
                          *, seed: int = 0, epoch: int = 0, progress: bool = False) -> ChipTable:
        """The pool of negative chips: regions dense with proposals that no positive chip explains.

        Every valid proposal and non-crowd ground-truth box goes to the positive chip of its scale
        where its iof is largest; it is covered if its clipped part there is still valid. The rest go
        through the greedy cover, and a chip holding more than ``neg_thresholds`` of them is kept.

        Args:
            image_sizes: as for :meth:`generate_positive`.
            proposals_list: per image, ``[P_i, 4]`` or ``[P_i, 5]`` proposals in original pixels (a score
                column is ignored).
            positive: the positive chips of the same images and epoch; their stride is used.
            gt_boxes_list, gt_crowd_list: the ground truth, mined along with the proposals. None: none.
            seed, epoch, progress: as for :meth:`generate_positive`.

        Returns:
            Every negative chip of every image; :meth:`sample_negative` draws an epoch's share.
        """
        sizes = self._check_image_sizes(image_sizes)
        if not np.array_equal(positive.image_sizes, sizes):
            raise ValueError('positive must be the chip table of the same images (its image_sizes differ)')
        chips_of, scaled_sizes = self._negative_work(sizes, proposals_list, gt_boxes_list, gt_crowd_list,
                                                     positive.stride, seed, epoch)
        image_starts = np.searchsorted(positive.image_index, np.arange(len(sizes) + 1))

        def pool_of(start: int, stop: int):
            rows = slice(image_starts[start], image_starts[stop])
            return chips_of(start, stop, {name: getattr(positive, name)[rows] for name in ChipTable.ROW_FIELDS})

        parts = self._map_batches(pool_of, len(sizes), progress)
        return ChipTable(**concat_rows(parts), image_sizes=sizes, scaled_sizes=scaled_sizes, stride=positive.stride,
                         settings=dict(self.settings(), seed=seed, epoch=epoch))

    def _negative_work(self, sizes: np.ndarray, proposals_list, gt_boxes_list, gt_crowd_list, stride: int, seed: int,
                       epoch: int):
        """The negative pool of a call batch by batch: ``chips_of(start, stop, positive_rows)`` mines a
        batch's images given their positive chips (rows of a :class:`ChipTable`, by field name); and the
        images' scaled sizes."""
        _check_per_image(proposals_list, len(sizes), 'proposals_list')
        if gt_boxes_list is not None:
            _check_per_image(gt_boxes_list, len(sizes), 'gt_boxes_list')
            if gt_crowd_list is not None:
                _check_per_image(gt_crowd_list, len(sizes), 'gt_crowd_list')
        scaled_sizes, factors = self.pyramid.geometry(sizes)
        thresholds = [self.neg_thresholds[0 if s == 0 else 1] + 1 for s in range(self.num_scales)]

        # The mining boxes are gathered batch by batch: at COCO's size all of them at once are gigabytes.
        def chips_of(start: int, stop: int, positive_rows: dict):
            mining_boxes = self._negative_mining_boxes(sizes, proposals_list, gt_boxes_list, gt_crowd_list, start, stop)
            batch = _ImageBatch(start=start, stop=stop, all_boxes=mining_boxes, scaled_sizes=scaled_sizes,
                                factors=factors, stride=stride, seed=seed, epoch=epoch)
            at_scales = batch.at_scales(self._valid_at_scales(batch))
            uncovered = [at_scale.select(~covered) for at_scale, covered
                         in zip(at_scales, self._covered_by_positive(batch, at_scales, positive_rows))]
            part, _ = self._cover(batch, uncovered, NEGATIVE_STREAM, thresholds, with_covered=False)
            return part

        return chips_of, scaled_sizes

    # ---------------------------------------------------------------- an epoch's chips

    def generate_epoch(self, image_sizes, gt_boxes_list: Sequence, gt_crowd_list: Optional[Sequence] = None,
                       proposals_list: Optional[Sequence] = None, *, seed: int = 0, epoch: int = 0,
                       progress: bool = False) -> ChipTable:
        """The chips an epoch trains on: the positive chips and, with ``proposals_list``, the negative
        chips :meth:`sample_negative` draws from each image's pool; the ground truth is mined along with
        the proposals. The same table as ``ChipTable.concat([positive, sample_negative(pool)])`` of
        :meth:`generate_positive` and :meth:`generate_negative`, made in one pass over the images:
        each batch's negatives are mined and drawn right after its positives, in the same worker.

        Args:
            image_sizes, gt_boxes_list, gt_crowd_list: as for :meth:`generate_positive`.
            proposals_list: as for :meth:`generate_negative`; None: positive chips only.
            seed, epoch, progress: as for :meth:`generate_positive`.
        """
        sizes = self._check_image_sizes(image_sizes)
        positive_of, table = self._positive_work(sizes, gt_boxes_list, gt_crowd_list, seed, epoch)
        if proposals_list is None:
            return table(self._map_batches(positive_of, len(sizes), progress))
        negative_of, _ = self._negative_work(sizes, proposals_list, gt_boxes_list, gt_crowd_list,
                                             self.epoch_stride(seed, epoch), seed, epoch)

        def chips_of(start: int, stop: int):
            positive, uncovered, without_scale = positive_of(start, stop)
            pool = negative_of(start, stop, positive)
            drawn = self._drawn(pool['image_index'], seed, epoch, self.neg_chips_per_image)
            rows = {name: np.concatenate([positive[name], pool[name][drawn]]) for name in ChipTable.ROW_FIELDS}
            order = np.argsort(rows['image_index'], kind='stable')  # as ChipTable.concat orders them
            return {name: values[order] for name, values in rows.items()}, uncovered, without_scale

        return table(self._map_batches(chips_of, len(sizes), progress))

    def sample_negative(self, pool: ChipTable, *, seed: int = 0, epoch: int = 0,
                        chips_per_image: Optional[int] = None) -> ChipTable:
        """An epoch's negative chips: ``chips_per_image`` (default ``neg_chips_per_image``) drawn
        uniformly without replacement from each image's pool, in table order."""
        n = self.neg_chips_per_image if chips_per_image is None else chips_per_image
        return pool.select(self._drawn(pool.image_index, seed, epoch, n))

    @staticmethod
    def _drawn(image: np.ndarray, seed: int, epoch: int, n: int) -> np.ndarray:
        """Which rows of a pool (``image``: each row's image, ordered) each image's draw of ``n`` picks.
        Each image's draw depends on its own rows only, so a part of a pool draws as the whole does."""
        first = np.searchsorted(image, image)
        j = np.arange(len(image)) - first
        priority = nth(derive_key(seed, epoch, image, 0, SAMPLING_STREAM), j)
        order = np.lexsort((j, priority, image))
        rank = np.empty(len(image), dtype=np.int64)
        rank[order] = np.arange(len(image)) - first[order]
        return rank < n

    # ---------------------------------------------------------------- shared steps

    def _cover(self, batch: _ImageBatch, at_scales: List[_AtScale], stream: int, min_counts: List[int],
               with_covered: bool = True):
        """Greedy cover, per image and scale, of the batch's boxes ``at_scales[s]`` at scale ``s``,
        stopping where a chip would add fewer than ``min_counts[s]``. Returns the chip rows (positive
        chips for the positive stream) and, ``with_covered``, which of the batch's boxes ``[S, E]`` got
        covered (else None)."""
        start, n = batch.start, batch.num_images
        scaled_sizes, factors = batch.scaled_sizes, batch.factors
        covered = np.zeros((self.num_scales, len(batch.boxes)), bool) if with_covered else None
        parts = []
        # One op call per distinct min_count: all scales together when they share it, as items
        # (scale, image), scale-major.
        for min_count in sorted(set(min_counts)):
            scales = [s for s in range(self.num_scales) if min_counts[s] == min_count]
            item_of = np.concatenate([at_scales[s].image - start + slot * n for slot, s in enumerate(scales)])
            padded, place = _pack(item_of, np.concatenate([at_scales[s].boxes for s in scales]), len(scales) * n)
            item_image = np.tile(np.arange(start, batch.stop), len(scales))
            item_scale = np.repeat(scales, n)
            keys = derive_key(batch.seed, batch.epoch, item_image, item_scale, stream).astype(np.int64)
            chips, box_pick = chip_grid_cover(
                torch.from_numpy(padded).to(self.device),
                torch.from_numpy(scaled_sizes[item_image, item_scale]).to(self.device),
                torch.from_numpy(keys).to(self.device), self.chip_size, batch.stride, self.min_iof, min_count)
            chips, box_pick = chips.cpu().numpy(), box_pick.cpu().numpy()
            if with_covered:
                box_covered = box_pick.reshape(-1)[place] >= 0
                ends = np.cumsum([len(at_scales[s].rows) for s in scales])
                for s, scale_covered in zip(scales, np.split(box_covered, ends[:-1])):
                    covered[s, at_scales[s].rows] = scale_covered
            item, pick = np.nonzero(chips[:, :, 2] > chips[:, :, 0])
            width = max(padded.shape[1], 1)
            picked_at = np.flatnonzero(box_pick >= 0)
            picked = box_pick.reshape(-1)[picked_at] + picked_at // width * width
            counts = np.bincount(picked, minlength=len(chips) * width).reshape(len(chips), width)
            parts.append(dict(image_index=item_image[item], scale_index=item_scale[item],
                              scale_factor=factors[item_image[item], item_scale[item]], chips=chips[item, pick],
                              box_count=counts[item, pick], positive=np.full(len(item), stream == POSITIVE_STREAM)))
        rows = concat_rows(parts)
        # Table order: image, scale, pick (each part is already in that order within itself).
        order = np.lexsort((np.arange(len(rows['image_index'])), rows['scale_index'], rows['image_index']))
        return {name: values[order] for name, values in rows.items()}, covered

    def _valid_at_scales(self, batch: _ImageBatch) -> np.ndarray:
        """Bool ``[S, E]``: which of the batch's boxes are valid at each scale."""
        boxes = batch.boxes
        return self.pyramid.valid_at_every_scale(boxes[:, 2].astype(np.float64) - boxes[:, 0],
                                                 boxes[:, 3].astype(np.float64) - boxes[:, 1],
                                                 batch.per_box(batch.factors), batch.stride)

    def _covered_by_positive(self, batch: _ImageBatch, at_scales: List[_AtScale],
                             positive: dict) -> List[np.ndarray]:
        """Which of the boxes ``at_scales[s]`` the positive chip (of ``positive``, the batch's chip rows
        by field name) of their scale with the largest iof holds with a part still valid there
        (docs/chip_generation.md, section 8, step 1)."""
        start, n = batch.start, batch.num_images
        covered = []
        for s, at_scale in enumerate(at_scales):
            at = np.flatnonzero(positive['scale_index'] == s)
            # Every image is padded to the most chips of the batch; the op skips the padding (empty
            # chips), and an image without a positive chip at this scale covers nothing.
            chips, _ = _pack(positive['image_index'][at] - start, positive['chips'][at], n)
            boxes, place = _pack(at_scale.image - start, at_scale.boxes, n)
            _, part = assign_boxes_to_chips(torch.from_numpy(boxes).to(self.device),
                                            torch.from_numpy(chips).to(self.device))
            part = np.take(part.cpu().numpy().reshape(-1, 4), place, axis=0)
            # Width and height in scaled pixels of each box's part inside its chip; the part is
            # empty where no chip holds any of the box.
            part_w, part_h = part[:, 2] - part[:, 0], part[:, 3] - part[:, 1]
            box_factors = at_scale.factors
            ok = (part_w > 0) & (part_h > 0)
            ok &= self.pyramid.valid(part_w.astype(np.float64) / box_factors[:, 0],
                                     part_h.astype(np.float64) / box_factors[:, 1], s, box_factors, batch.stride)
            covered.append(ok)
        return covered

    def _negative_mining_boxes(self, sizes, proposals_list, gt_boxes_list, gt_crowd_list, start: int,
                               stop: int) -> _Boxes:
        """The boxes negative chips are mined from in images ``start .. stop - 1``: each image's
        proposals followed by its non-crowd ground-truth boxes."""
        boxes = _Boxes(_images(proposals_list, start, stop), sizes[start:stop], 'proposals_list', max_columns=5,
                       first_image=start)
        if gt_boxes_list is not None:
            gt = _Boxes(_images(gt_boxes_list, start, stop), sizes[start:stop], 'gt_boxes_list', first_image=start)
            crowd = None if gt_crowd_list is None else _images(gt_crowd_list, start, stop)
            boxes.extend(gt, ~self._crowd_flags(crowd, gt))
        return boxes

    @staticmethod
    def _crowd_flags(gt_crowd_list, gt: _Boxes) -> np.ndarray:
        if gt_crowd_list is None:
            return np.zeros(len(gt.boxes), bool)
        _check_per_image(gt_crowd_list, len(gt.counts), 'gt_crowd_list')
        if isinstance(gt_crowd_list, RaggedArray):
            wrong = np.flatnonzero(gt_crowd_list.counts != gt.counts)
            if len(wrong) or gt_crowd_list.flat.ndim != 1:
                i = int(wrong[0]) if len(wrong) else 0
                name = gt.first_image + i
                raise ValueError(f'gt_crowd_list[{name}] must hold one flag per box of gt_boxes_list[{name}] '
                                 f'({gt.counts[i]}), got shape {tuple(gt_crowd_list[i].shape)}')
            return gt_crowd_list.flat.astype(bool)
        flags = []
        for i, crowd in enumerate(gt_crowd_list):
            array = np.asarray(crowd, dtype=bool).reshape(-1)
            if len(array) != gt.counts[i]:
                name = gt.first_image + i
                raise ValueError(f'gt_crowd_list[{name}] must hold one flag per box of gt_boxes_list[{name}] '
                                 f'({gt.counts[i]}), got {len(array)}')
            flags.append(array)
        return np.concatenate(flags) if flags else np.zeros(0, bool)

    @staticmethod
    def _check_image_sizes(image_sizes) -> np.ndarray:
        sizes = np.asarray(image_sizes)
        if sizes.size == 0:
            return np.zeros((0, 2), np.int64)
        if sizes.ndim != 2 or sizes.shape[1] != 2 or not np.issubdtype(sizes.dtype, np.number):
            raise ValueError(f'image_sizes must have shape [num_images, 2] (width, height), got {sizes.shape}')
        bad = ~np.isfinite(sizes).all(1) | (sizes < 1).any(1) | (sizes != np.round(sizes)).any(1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f'image_sizes must be whole pixels >= 1; image {i} has {sizes[i].tolist()}')
        return sizes.astype(np.int64)

    def _map_batches(self, work: Callable[[int, int], T], num_images: int, progress: bool) -> List[T]:
        """``work(start, stop)`` of each batch of ``images_per_batch`` images, in order; in forked
        workers where the call is large enough (see ``workers``)."""
        ranges = [(start, min(start + self.images_per_batch, num_images))
                  for start in range(0, num_images, self.images_per_batch)]
        workers = min(self.workers, len(ranges) // BATCHES_PER_WORKER)
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(num_images)
        results = []
        forkable = ('fork' in multiprocessing.get_all_start_methods() and self.device.type == 'cpu'
                    and not multiprocessing.current_process().daemon)
        with _forked_pool(work, workers) if workers > 1 and forkable else _in_process(work) as run:
            for (start, stop), result in zip(ranges, run(ranges)):
                results.append(result)
                if bar is not None:
                    bar.update(stop - start)
        return results


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


@contextmanager
def _in_process(work: Callable[[int, int], T]):
    yield lambda ranges: (work(start, stop) for start, stop in ranges)


# The work of the pool being forked: its workers inherit it with the process's memory, so that
# neither the closure nor the inputs it reads are pickled. One pool at a time.
_forked_work: Optional[Callable] = None
_forked_work_lock = threading.Lock()


def _call_forked_work(batch_range: Tuple[int, int]):
    # An error is returned, not raised: the pool is then never torn down with tasks still queued,
    # which hangs Python 3.8's Pool.terminate (its task handler blocks on the queue of dead workers).
    try:
        return True, _forked_work(*batch_range)
    except Exception as error:
        return False, error


def _results_then_first_error(results: Iterator[Tuple[bool, T]]) -> Iterator[T]:
    """The values of the batches in order up to the first that failed, whose error is raised once
    every batch has come back."""
    error = None
    for ok, value in results:
        if error is None and not ok:
            error = value
        elif error is None:
            yield value
    if error is not None:
        raise error


def _one_thread() -> None:
    # As in a data loader worker: the workers share the CPUs, and an OpenMP pool is not fork-safe.
    torch.set_num_threads(1)


@contextmanager
def _forked_pool(work: Callable[[int, int], T], workers: int):
    global _forked_work
    with _forked_work_lock:
        _forked_work = work
        try:
            with multiprocessing.get_context('fork').Pool(workers, initializer=_one_thread) as pool:
                yield lambda ranges: _results_then_first_error(pool.imap(_call_forked_work, ranges))
        finally:
            _forked_work = None
