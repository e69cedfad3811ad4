"""SNIPER chip generation: positive chips that cover the ground truth of every scale, negative chips
mined from proposals (docs/chip_generation.md).

Images are processed in batches: the boxes of every (image, scale) pair of a batch are padded into
one tensor and go through the ops together, so the per-image Python cost is a few array slices.
"""
from dataclasses import dataclass, replace
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmdet_sniper.ops import assign_boxes_to_chips, chip_grid_cover
from mmdet_sniper.ops.splitmix64 import derive_key, nth
from .ragged import RaggedArray
from .scales import ScalePyramid, ScaleSpec, check_chip_stride, epoch_stride
from .table import ChipTable, concat_rows

# Streams of the SplitMix64 keys (docs/chip_generation.md, section 3).
POSITIVE_STREAM, NEGATIVE_STREAM, SAMPLING_STREAM = 0, 1, 2


class _Boxes:
    """Ragged per-image boxes as one flat float32 ``[T, 4]`` array, clipped to their images."""

    def __init__(self, boxes_list: Sequence, image_sizes: np.ndarray, name: str, min_columns: int = 4,
                 max_columns: int = 4):
        if len(boxes_list) != len(image_sizes):
            raise ValueError(f'{name} must hold one entry per image ({len(image_sizes)}), got {len(boxes_list)}')
        if isinstance(boxes_list, RaggedArray):
            flat = boxes_list.flat
            if flat.ndim != 2 or not min_columns <= flat.shape[1] <= max_columns:
                expected = '[T, 4]' if max_columns == 4 else f'[T, {min_columns}..{max_columns}]'
                raise ValueError(f'{name}.flat must have shape {expected}, got {tuple(flat.shape)}')
            self._set(np.array(flat[:, :4], dtype=np.float32), boxes_list.counts, image_sizes, name)
            return
        arrays = [np.asarray(boxes, dtype=np.float32) for boxes in boxes_list]
        shapes = {a.shape[1:] if a.size else (4,) for a in arrays}
        if not all(len(shape) == 1 and min_columns <= shape[0] <= max_columns for shape in shapes):
            i = next(i for i, a in enumerate(arrays)
                     if a.size and (a.ndim != 2 or not min_columns <= a.shape[1] <= max_columns))
            expected = '[N, 4]' if max_columns == 4 else f'[N, {min_columns}..{max_columns}]'
            raise ValueError(f'{name}[{i}] must have shape {expected} (x1, y1, x2, y2'
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
        bad = ~np.isfinite(boxes).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            image = int(np.searchsorted(self.offsets, row, side='right') - 1)
            raise ValueError(f'{name}[{image}] (image {image}) has a non-finite coordinate in box '
                             f'{row - self.offsets[image]}: {boxes[row].tolist()}')
        self.image = np.repeat(np.arange(len(counts)), self.counts)
        self.index_in_image = np.arange(len(boxes)) - self.offsets[self.image]
        limits = image_sizes.astype(np.float32)[self.image]
        for column in range(4):
            np.clip(boxes[:, column], 0, limits[:, column % 2], out=boxes[:, column])
        self.boxes = boxes

    def extend(self, other: '_Boxes', keep: np.ndarray) -> None:
        """Appends the ``keep`` boxes of ``other`` (the same images) after each image's own boxes."""
        other_image = other.image[keep]
        other_counts = np.bincount(other_image, minlength=len(self.counts))
        counts = self.counts + other_counts
        offsets = np.concatenate([[0], np.cumsum(counts)])
        # Both are ordered by image: each image's own rows first, then its rows of `other`.
        own_rows = offsets[self.image] + self.index_in_image
        other_first = np.cumsum(other_counts) - other_counts
        other_rows = (offsets[other_image] + self.counts[other_image]
                      + np.arange(len(other_image)) - other_first[other_image])
        boxes = np.empty((len(own_rows) + len(other_rows), 4), np.float32)
        boxes[own_rows], boxes[other_rows] = self.boxes, other.boxes[keep]
        self.boxes, self.counts, self.offsets = boxes, counts, offsets
        self.image = np.repeat(np.arange(len(counts)), counts)
        self.index_in_image = np.arange(len(boxes)) - offsets[self.image]

    def rows_of_images(self, start: int, stop: int) -> slice:
        return slice(int(self.offsets[start]), int(self.offsets[stop]))


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
        return self.all_boxes.image[self.rows]


def _pack(item_of: np.ndarray, values: np.ndarray, num_items: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pads per-item rows into ``[num_items, max_rows, ...]`` (zeros, i.e. empty boxes, as padding),
    keeping each item's rows in their order. Returns the padded array and each row's position."""
    counts = np.bincount(item_of, minlength=num_items)
    starts = np.cumsum(counts) - counts
    if np.all(item_of[1:] >= item_of[:-1]):
        position = np.arange(len(item_of)) - starts[item_of]
    else:
        order = np.argsort(item_of, kind='stable')
        position = np.empty(len(item_of), dtype=np.int64)
        position[order] = np.arange(len(item_of)) - starts[item_of[order]]
    padded = np.zeros((num_items, int(counts.max(initial=0))) + values.shape[1:], dtype=values.dtype)
    padded[item_of, position] = values
    return padded, position


def _scaled(boxes: np.ndarray, factors: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Boxes in the scaled image: each coordinate times its axis's float32 factor, in float32, then
    clipped to the scaled image: ``W * sx`` can round past ``Ws`` by more than ``min_iof`` forgives
    a narrow box on the far border."""
    return np.minimum(boxes * np.tile(factors, 2), np.tile(sizes, 2).astype(np.float32))


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
    """

    def __init__(self, scales: Sequence[ScaleSpec] = (3.0, 1.667, 512),
                 valid_ranges: Sequence[Tuple[float, float]] = ((-1, 80), (32, 150), (120, -1)),
                 chip_size: int = 512, chip_stride: Union[int, Tuple[int, int]] = (56, 60),
                 min_iof: float = 1 - 1e-6, neg_thresholds: Tuple[int, int] = (25, 10),
                 neg_chips_per_image: int = 2, device: Union[str, torch.device] = 'cpu',
                 images_per_batch: int = 256):
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
        self.chip_size = chip_size
        self.chip_stride = tuple(chip_stride) if isinstance(chip_stride, (tuple, list)) else chip_stride
        self.min_iof = min_iof
        self.neg_thresholds = tuple(neg_thresholds)
        self.neg_chips_per_image = neg_chips_per_image
        self.device = torch.device(device)
        self.images_per_batch = images_per_batch

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
        gt = _Boxes(gt_boxes_list, sizes, 'gt_boxes_list')
        crowd = self._crowd_flags(gt_crowd_list, gt)
        stride = self.epoch_stride(seed, epoch)
        scaled_sizes, factors = self.pyramid.geometry(sizes)
        parts, uncovered, without_scale = [], [], []
        images = _ImageBatch(start=0, stop=len(sizes), all_boxes=gt, scaled_sizes=scaled_sizes, factors=factors,
                             stride=stride, seed=seed, epoch=epoch)
        for batch in self._batches(images, progress):
            target = ~crowd[batch.rows]
            valid = self._valid_at_scales(batch) & target[None]
            part, covered = self._cover(batch, valid, POSITIVE_STREAM, [1] * self.num_scales)
            parts.append(part)
            valid_somewhere = valid.any(0)
            boxes_at = np.stack([batch.image, gt.index_in_image[batch.rows]], axis=1)
            uncovered.append(boxes_at[valid_somewhere & ~covered.any(0)])
            without_scale.append(boxes_at[target & ~valid_somewhere])
        return ChipTable(**concat_rows(parts), image_sizes=sizes, scaled_sizes=scaled_sizes, stride=stride,
                         uncovered_boxes=np.concatenate(uncovered or [np.zeros((0, 2), np.int64)]),
                         boxes_without_scale=np.concatenate(without_scale or [np.zeros((0, 2), np.int64)]),
                         settings=dict(self.settings(), seed=seed, epoch=epoch))

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
        mining_boxes = self._negative_mining_boxes(sizes, proposals_list, gt_boxes_list, gt_crowd_list)
        stride = positive.stride
        scaled_sizes, factors = self.pyramid.geometry(sizes)
        image_starts = np.searchsorted(positive.image_index, np.arange(len(sizes) + 1))
        thresholds = [self.neg_thresholds[0 if s == 0 else 1] + 1 for s in range(self.num_scales)]
        parts = []
        images = _ImageBatch(start=0, stop=len(sizes), all_boxes=mining_boxes, scaled_sizes=scaled_sizes,
                             factors=factors, stride=stride, seed=seed, epoch=epoch)
        for batch in self._batches(images, progress):
            valid = self._valid_at_scales(batch)
            in_positive = positive.select(slice(image_starts[batch.start], image_starts[batch.stop]))
            valid &= ~self._covered_by_positive(batch, valid, in_positive)
            part, _ = self._cover(batch, valid, NEGATIVE_STREAM, thresholds)
            parts.append(part)
        return ChipTable(**concat_rows(parts), image_sizes=sizes, scaled_sizes=scaled_sizes, stride=stride,
                         settings=dict(self.settings(), seed=seed, epoch=epoch))

    def sample_negative(self, pool: ChipTable, *, seed: int = 0, epoch: int = 0,
                        chips_per_image: Optional[int] = None) -> ChipTable:
        """An epoch's negative chips: ``chips_per_image`` (default ``neg_chips_per_image``) drawn
        uniformly without replacement from each image's pool, in table order."""
        n = self.neg_chips_per_image if chips_per_image is None else chips_per_image
        image = pool.image_index
        first = np.searchsorted(image, image)  # rows are ordered by image
        j = np.arange(len(image)) - first
        priority = nth(derive_key(seed, epoch, image, 0, SAMPLING_STREAM), j)
        order = np.lexsort((j, priority, image))
        rank = np.empty(len(image), dtype=np.int64)
        rank[order] = np.arange(len(image)) - first[order]
        return pool.select(rank < n)

    # ---------------------------------------------------------------- shared steps

    def _cover(self, batch: _ImageBatch, valid: np.ndarray, stream: int, min_counts: List[int]):
        """Greedy cover, per image and scale, of the batch's boxes ``valid[s]`` marks at scale ``s``,
        stopping where a chip would add fewer than ``min_counts[s]``. Returns the chip rows (positive
        chips for the positive stream) and which boxes ``[S, E]`` got covered."""
        boxes, image, start, n = batch.boxes, batch.image, batch.start, batch.num_images
        scaled_sizes, factors = batch.scaled_sizes, batch.factors
        covered = np.zeros_like(valid)
        parts = []
        # One op call per distinct min_count: all scales together when they share it.
        for min_count in sorted(set(min_counts)):
            scales = [s for s in range(self.num_scales) if min_counts[s] == min_count]
            entries = [(s, np.flatnonzero(valid[s])) for s in scales]
            box_rows = np.concatenate([e for _, e in entries])
            scale_of = np.concatenate([np.full(len(e), s) for s, e in entries])
            local_image = image[box_rows] - start
            item_of = local_image * len(scales) + np.searchsorted(scales, scale_of)
            scaled = _scaled(boxes[box_rows], factors[image[box_rows], scale_of],
                             scaled_sizes[image[box_rows], scale_of])
            padded, position = _pack(item_of, scaled, n * len(scales))
            item_image = np.repeat(np.arange(start, batch.stop), len(scales))
            item_scale = np.tile(scales, n)
            keys = derive_key(batch.seed, batch.epoch, item_image, item_scale, stream).astype(np.int64)
            chips, box_pick = chip_grid_cover(
                torch.from_numpy(padded).to(self.device),
                torch.from_numpy(scaled_sizes[item_image, item_scale]).to(self.device),
                torch.from_numpy(keys).to(self.device), self.chip_size, batch.stride, self.min_iof, min_count)
            chips, box_pick = chips.cpu().numpy(), box_pick.cpu().numpy()
            covered[scale_of, box_rows] = box_pick[item_of, position] >= 0
            item, pick = np.nonzero(chips[:, :, 2] > chips[:, :, 0])
            width = max(padded.shape[1], 1)
            picked = box_pick[box_pick >= 0] + np.nonzero(box_pick >= 0)[0] * width
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
                                                 batch.factors[batch.image], batch.stride)

    def _covered_by_positive(self, batch: _ImageBatch, valid: np.ndarray, positive: ChipTable) -> np.ndarray:
        """Which of the batch's valid boxes ``[S, E]`` the positive chip (of ``positive``, the batch's)
        of their scale with the largest iof holds with a part still valid there (docs/chip_generation.md,
        section 8, step 1)."""
        boxes, image, start, n = batch.boxes, batch.image, batch.start, batch.num_images
        scaled_sizes, factors = batch.scaled_sizes, batch.factors
        covered = np.zeros_like(valid)
        for s in range(self.num_scales):
            at_scale = np.flatnonzero(positive.scale_index == s)
            chip_image = positive.image_index[at_scale] - start
            # Images with about as many chips go through the op together, so that padding every image
            # to the most chips of the batch does not multiply the work. Images without a positive
            # chip at this scale cover nothing.
            chips_per_image = np.bincount(chip_image, minlength=n)
            group = np.where(chips_per_image > 0, np.ceil(np.log2(np.maximum(chips_per_image, 1))), -1)
            box_rows = np.flatnonzero(valid[s])
            box_group = group[image[box_rows] - start]
            chip_group = group[chip_image]
            slot = np.zeros(n, dtype=np.int64)  # an image's place within its group
            for g in np.unique(group[group >= 0]):
                in_group = np.flatnonzero(group == g)
                slot[in_group] = np.arange(len(in_group))
                chip_rows = at_scale[chip_group == g]
                rows = box_rows[box_group == g]
                chips, _ = _pack(slot[chip_image[chip_group == g]], positive.chips[chip_rows], len(in_group))
                item_of = slot[image[rows] - start]
                box_factors = factors[image[rows], s]
                scaled = _scaled(boxes[rows], box_factors, scaled_sizes[image[rows], s])
                padded, position = _pack(item_of, scaled, len(in_group))
                chip_index, part = assign_boxes_to_chips(torch.from_numpy(padded).to(self.device),
                                                         torch.from_numpy(chips).to(self.device))
                part = part.cpu().numpy()[item_of, position]
                # Width and height in scaled pixels of each box's part inside its chip; the part is
                # empty where no chip holds any of the box.
                part_w, part_h = part[:, 2] - part[:, 0], part[:, 3] - part[:, 1]
                ok = (part_w > 0) & (part_h > 0)
                ok &= self.pyramid.valid(part_w.astype(np.float64) / box_factors[:, 0],
                                         part_h.astype(np.float64) / box_factors[:, 1], s, box_factors,
                                         batch.stride)
                covered[s, rows] = ok
        return covered

    def _negative_mining_boxes(self, sizes, proposals_list, gt_boxes_list, gt_crowd_list) -> _Boxes:
        """The boxes negative chips are mined from: each image's proposals followed by its non-crowd
        ground-truth boxes."""
        boxes = _Boxes(proposals_list, sizes, 'proposals_list', max_columns=5)
        if gt_boxes_list is not None:
            gt = _Boxes(gt_boxes_list, sizes, 'gt_boxes_list')
            boxes.extend(gt, ~self._crowd_flags(gt_crowd_list, gt))
        return boxes

    @staticmethod
    def _crowd_flags(gt_crowd_list, gt: _Boxes) -> np.ndarray:
        if gt_crowd_list is None:
            return np.zeros(len(gt.boxes), bool)
        if len(gt_crowd_list) != len(gt.counts):
            raise ValueError(f'gt_crowd_list must hold one entry per image ({len(gt.counts)}), '
                             f'got {len(gt_crowd_list)}')
        if isinstance(gt_crowd_list, RaggedArray):
            wrong = np.flatnonzero(gt_crowd_list.counts != gt.counts)
            if len(wrong) or gt_crowd_list.flat.ndim != 1:
                i = int(wrong[0]) if len(wrong) else 0
                raise ValueError(f'gt_crowd_list[{i}] must hold one flag per box of gt_boxes_list[{i}] '
                                 f'({gt.counts[i]}), got shape {tuple(gt_crowd_list[i].shape)}')
            return gt_crowd_list.flat.astype(bool)
        flags = []
        for i, crowd in enumerate(gt_crowd_list):
            array = np.asarray(crowd, dtype=bool).reshape(-1)
            if len(array) != gt.counts[i]:
                raise ValueError(f'gt_crowd_list[{i}] must hold one flag per box of gt_boxes_list[{i}] '
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

    def _batches(self, images: _ImageBatch, progress: bool) -> Iterator[_ImageBatch]:
        """``images`` in batches of ``images_per_batch``."""
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(images.num_images)
        for start in range(images.start, images.stop, self.images_per_batch):
            batch = replace(images, start=start, stop=min(start + self.images_per_batch, images.stop))
            yield batch
            if bar is not None:
                bar.update(batch.num_images)
