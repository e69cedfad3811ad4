"""SniperDataset: any mmdet detection dataset, seen as the SNIPER chips of its images."""
import hashlib
import json
import numbers
import os
import os.path as osp
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from mmdet.registry import DATASETS
import mmdet_sniper
from mmdet_sniper.chips import ChipGenerator, ChipTable
from mmdet_sniper.chips.proposals import load_proposals

# Bump when chip generation changes, so that cached chip tables of older versions are not reused.
CHIP_CACHE_FORMAT = 1


class ChipKey(NamedTuple):
    """Everything needed to load one chip. The sampler hands these, not row numbers, to the data
    loader: its workers (persistent in mmdet configs) hold a copy of the dataset from an earlier
    epoch, whose rows are other chips."""
    epoch: int
    image_index: int
    scale_index: int
    chip: Tuple[float, float, float, float]  # x1, y1, x2, y2 in the scaled image's pixels
    scale_factor: Tuple[float, float]  # sx, sy from the original image to the scaled one
    positive: bool
    stride: int


def default_cache_dir() -> str:
    return osp.join(os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')), 'mmdet_sniper', 'chips')


@DATASETS.register_module()
class SniperDataset:
    """The chips of a detection dataset: each item is one chip of one image at one scale.

    At build time it reads every image's size and boxes from the wrapped dataset and makes the chips
    of epoch 0; :meth:`set_epoch` (called by :class:`ChipAwareSampler`) makes another epoch's chips
    current: the chip stride is re-drawn where ``chip_stride`` is a range, and with a proposals file
    the epoch's negative chips are sampled. Chip tables are cached on disk, keyed by a digest of the
    images' sizes and boxes, the proposals, the settings and the epoch, so a restart does not
    recompute them.

    An item is the wrapped dataset's data info of the chip's image plus the chip (see
    :class:`CropChip`, which consumes these), passed through the wrapped dataset's pipeline:

    - ``chip``: float32 ``[4]`` ``(x1, y1, x2, y2)`` in the scaled image's pixels;
    - ``chip_scale_factor``: float32 ``[2]`` ``(sx, sy)``, scaled pixels per original pixel;
    - ``chip_scale_index``: 0 for the finest scale; ``chip_positive``: False for a negative chip;
    - ``chip_size``: the chip side in pixels, which the chip is padded to;
    - ``chip_valid_range``: ``(lo, hi)`` in original pixels, -1 unbounded
      (:meth:`ScalePyramid.effective_range`);
    - ``chip_instance_valid``: bool ``[N]``, whether each of ``instances`` is valid at the chip's
      scale (:meth:`ScalePyramid.valid`, the rule that chose the chips).

    Args:
        dataset: the wrapped dataset or its config (e.g. ``CocoDataset``) with the training pipeline
            (``LoadImageFromFile``, ``LoadAnnotations``, ``CropChip``, ...). Its ``ignore_flag``
            instances (crowd) are never targets.
        scales, valid_ranges, chip_size, chip_stride, min_iof, neg_thresholds, neg_chips_per_image:
            chip generation settings, see :class:`ChipGenerator` (defaults: the authors' COCO setting).
        proposals_file: proposals per image id (see :func:`load_proposals`) to mine negative chips
            from; None, or ``neg_chips_per_image=0``: positive chips only.
        proposals_nms_iou: NMS threshold applied to each image's proposals on load, which pools the
            proposals a file holds for several test scales (the authors: 0.7); None: none. Needs the
            score column.
        seed: names the chips of every epoch, the same on every rank.
        cache_dir: where chip tables are cached; ``'auto'``: ``$XDG_CACHE_HOME/mmdet_sniper/chips``
            (``~/.cache/...``); None: no cache.
        device: where chips are generated (``'cpu'`` or a CUDA device).
    """

    def __init__(self, dataset: Union[dict, object], scales=(3.0, 1.667, 512),
                 valid_ranges=((-1, 80), (32, 150), (120, -1)), chip_size: int = 512,
                 chip_stride: Union[int, Tuple[int, int]] = (56, 60), min_iof: float = 1 - 1e-6,
                 proposals_file: Optional[str] = None, proposals_nms_iou: Optional[float] = 0.7,
                 neg_thresholds: Tuple[int, int] = (25, 10), neg_chips_per_image: int = 2, seed: int = 0,
                 cache_dir: Optional[str] = 'auto', device: str = 'cpu'):
        # Built lazily, so that loading the annotations happens in _read_annotations, which explains
        # an empty annotation file instead of failing inside mmengine's serialisation.
        self.dataset = DATASETS.build(dict(dataset, lazy_init=True)) if isinstance(dataset, dict) else dataset
        self.generator = ChipGenerator(scales=scales, valid_ranges=valid_ranges, chip_size=chip_size,
                                       chip_stride=chip_stride, min_iof=min_iof, neg_thresholds=neg_thresholds,
                                       neg_chips_per_image=neg_chips_per_image, device=device)
        if proposals_nms_iou is not None and not 0 < proposals_nms_iou <= 1:
            raise ValueError(f'proposals_nms_iou must be an IoU in (0, 1] or None, got {proposals_nms_iou!r}')
        self.proposals_file = proposals_file if neg_chips_per_image > 0 else None
        self.proposals_nms_iou = proposals_nms_iou
        self.seed = seed
        self.cache_dir = default_cache_dir() if cache_dir == 'auto' else cache_dir
        self.epoch: Optional[int] = None
        self.table: Optional[ChipTable] = None
        self._read_annotations()
        self.set_epoch(0)

    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo

    @property
    def pyramid(self):
        return self.generator.pyramid

    def full_init(self) -> None:
        """Nothing to do: the chips are made at build time (mmengine calls this on datasets)."""

    # ---------------------------------------------------------------- chips of an epoch

    def _read_annotations(self) -> None:
        source = getattr(self.dataset, 'ann_file', type(self.dataset).__name__)
        empty = ValueError(f'the wrapped dataset holds no images (annotation file {source!r}); there is '
                           'nothing to make chips of')
        try:
            self.dataset.full_init()
        except ValueError as error:
            if getattr(self.dataset, 'data_list', None) == []:
                raise empty from error
            raise
        if len(self.dataset) == 0:
            raise empty
        sizes, boxes, crowd, self.image_ids, self.image_paths = [], [], [], [], []
        for i in range(len(self.dataset)):
            info = self.dataset.get_data_info(i)
            if 'width' not in info or 'height' not in info:
                raise ValueError(f'image {info.get("img_path", i)} has no width/height in its data info; '
                                 'SniperDataset needs the image sizes to make chips')
            sizes.append((info['width'], info['height']))
            instances = info.get('instances', [])
            boxes.append(np.array([inst['bbox'] for inst in instances], dtype=np.float32).reshape(-1, 4))
            crowd.append(np.array([bool(inst.get('ignore_flag', 0)) for inst in instances], dtype=bool))
            self.image_ids.append(info.get('img_id', i))
            self.image_paths.append(info.get('img_path', str(i)))
        self.image_sizes = np.array(sizes, dtype=np.int64)
        self.gt_boxes, self.gt_crowd = boxes, crowd
        self.proposals = None
        if self.proposals_file is not None:
            self.proposals = load_proposals(self.proposals_file, self.image_ids)
            if self.proposals_nms_iou is not None:
                self.proposals = [self._pool(p, i) for i, p in enumerate(self.proposals)]
        self._digest = self._inputs_digest()

    def _pool(self, proposals: np.ndarray, image: int) -> np.ndarray:
        """One image's proposals after NMS, highest score first."""
        if len(proposals) == 0:
            return proposals
        if proposals.shape[1] != 5:
            raise ValueError(f'{self.proposals_file}: proposals_nms_iou needs scores, but the proposals of image '
                             f'{self.image_ids[image]} are [P, 4]; set proposals_nms_iou=None to use them as they are')
        from mmcv.ops import nms
        _, keep = nms(proposals[:, :4], proposals[:, 4], self.proposals_nms_iou)
        return proposals[keep]

    def _inputs_digest(self) -> str:
        digest = hashlib.sha1()
        settings = dict(self.generator.settings(), seed=self.seed, proposals_nms_iou=self.proposals_nms_iou,
                        format=CHIP_CACHE_FORMAT, version=mmdet_sniper.__version__)
        digest.update(json.dumps(settings, sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.image_sizes).tobytes())
        for boxes, crowd in zip(self.gt_boxes, self.gt_crowd):
            digest.update(np.int64(len(boxes)).tobytes() + boxes.tobytes() + crowd.tobytes())
        for proposals in self.proposals or []:
            proposals = np.ascontiguousarray(proposals, dtype=np.float32)
            digest.update(np.int64(proposals.size).tobytes() + proposals.tobytes())
        return digest.hexdigest()[:20]

    def cache_path(self, epoch: int) -> Optional[str]:
        """The cache file of an epoch's chip table, or None without a cache."""
        if self.cache_dir is None:
            return None
        return osp.join(self.cache_dir, f'{self._digest}-epoch{epoch}.npz')

    def set_epoch(self, epoch: int) -> None:
        """Makes the chips of ``epoch`` current and logs their statistics."""
        if epoch == self.epoch:
            return
        path = self.cache_path(epoch)
        if path is not None and osp.exists(path):
            table = ChipTable.load(path)
            source = f'loaded from {path}'
        else:
            table = self._generate(epoch)
            source = 'generated'
            if path is not None:
                os.makedirs(self.cache_dir, exist_ok=True)
                # Ranks may write the same file at once: each writes its own, the rename is atomic.
                partial = f'{path}.{os.getpid()}.partial'
                table.save(partial)
                os.replace(partial, path)
        self.table, self.epoch = table, epoch
        print_log(f'SNIPER chips of epoch {epoch} ({source}):\n{table.format_summary()}', logger='current')
        self._report_boxes(table)

    def _generate(self, epoch: int) -> ChipTable:
        kwargs = dict(seed=self.seed, epoch=epoch)
        table = self.generator.generate_positive(self.image_sizes, self.gt_boxes, self.gt_crowd, **kwargs)
        if self.proposals is None:
            return table
        pool = self.generator.generate_negative(self.image_sizes, self.proposals, table, self.gt_boxes,
                                                self.gt_crowd, **kwargs)
        return ChipTable.concat([table, self.generator.sample_negative(pool, **kwargs)])

    def _report_boxes(self, table: ChipTable) -> None:
        for listed, what in ((table.uncovered_boxes, 'no positive chip holds'),
                             (table.boxes_without_scale, 'are valid at no scale (empty, outside the image '
                                                         'or between the valid ranges) and')):
            if len(listed):
                examples = '; '.join(f'{self.image_paths[i]} box {j}' for i, j in listed[:5].tolist())
                print_log(f'{len(listed)} ground-truth boxes {what} are not trained on, e.g. {examples}',
                          logger='current', level=30)

    # ---------------------------------------------------------------- items

    def __len__(self) -> int:
        return len(self.table)

    def chip_image_index(self) -> np.ndarray:
        """int64 ``[len(self)]``: the image of each chip of the current epoch (rows ordered by image)."""
        return self.table.image_index

    def chip_key(self, row: int) -> ChipKey:
        if not -len(self) <= row < len(self):
            raise IndexError(f'chip row {row} out of range for the {len(self)} chips of epoch {self.epoch}')
        t = self.table
        return ChipKey(epoch=self.epoch, image_index=int(t.image_index[row]), scale_index=int(t.scale_index[row]),
                       chip=tuple(float(v) for v in t.chips[row]),
                       scale_factor=tuple(float(v) for v in t.scale_factor[row]),
                       positive=bool(t.positive[row]), stride=int(t.stride))

    def get_data_info(self, idx: Union[int, ChipKey]) -> dict:
        """The wrapped dataset's data info of the chip's image, with the chip's fields added."""
        key = self._key(idx)
        info = self.dataset.get_data_info(key.image_index)
        factors = np.array(key.scale_factor, dtype=np.float32)
        width, height = self.image_sizes[key.image_index]
        boxes = np.array([inst['bbox'] for inst in info.get('instances', [])], dtype=np.float64).reshape(-1, 4)
        boxes = np.clip(boxes, 0, [width, height, width, height])
        valid = self.pyramid.valid(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], key.scale_index,
                                   np.broadcast_to(factors, (len(boxes), 2)), key.stride)
        info.update(chip=np.array(key.chip, dtype=np.float32), chip_scale_factor=factors,
                    chip_size=self.generator.chip_size, chip_scale_index=key.scale_index, chip_positive=key.positive,
                    chip_valid_range=self.pyramid.effective_range(key.scale_index), chip_instance_valid=valid)
        return info

    def __getitem__(self, idx: Union[int, ChipKey]) -> dict:
        key = self._key(idx)
        info = self.get_data_info(key)
        where = (f'chip {list(key.chip)} at scale {key.scale_index} of image {info.get("img_path")} '
                 f'(image index {key.image_index})')
        try:
            results = self.dataset.pipeline(info)
        except Exception as error:
            error.add_note(f'while loading {where}')
            raise
        if results is None:
            raise ValueError(f'the pipeline dropped {where}; SniperDataset needs every chip it samples')
        return results

    def _key(self, idx) -> ChipKey:
        if isinstance(idx, ChipKey):
            return idx
        if isinstance(idx, numbers.Integral):
            return self.chip_key(int(idx))
        raise TypeError(f'SniperDataset items are indexed by a chip row (int) or a ChipKey, got {type(idx).__name__}')

