"""SniperDataset: any mmdet detection dataset, seen as the SNIPER chips of its images."""
import json
import logging
import numbers
import os.path as osp
from typing import Optional, Tuple, Union

import numpy as np
from mmdet.registry import DATASETS
from mmengine import fileio
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmdet_sniper.chips import ChipGenerator, RaggedArray
from mmdet_sniper.chips.proposals import load_proposals
from mmdet_sniper.compat import add_note
from .epoch_chips import ChipKey, EpochChips, default_cache_dir


@DATASETS.register_module()
class SniperDataset:
    """The chips of a detection dataset, as training samples: a stateless loader from chip keys.

    At build time it reads every image's size and boxes (and the proposals, if any) from the wrapped
    dataset into :attr:`chips`, an :class:`EpochChips` that makes the chip table of each epoch: the chip
    stride is re-drawn every epoch where ``chip_stride`` is a range, and with a proposals file the
    epoch's negative chips are sampled. :class:`ChipAwareSampler` reads the epoch's table from there
    and hands the data loader :class:`ChipKey` s; the dataset turns a key, which carries the whole chip,
    into a sample. It holds no epoch, so data loader workers built in any epoch load any chip, and it
    has no length: the number of chips differs between epochs.

    A sample is the wrapped dataset's data info of the chip's image plus the chip (see
    :class:`CropChip`, which consumes these), passed through the wrapped dataset's pipeline:

    - ``chip``: float32 ``[4]`` ``(x1, y1, x2, y2)`` in the scaled image's pixels;
    - ``chip_scale_factor``: float32 ``[2]`` ``(sx, sy)``, scaled pixels per original pixel;
    - ``chip_scale_index``: 0 for the finest scale; ``chip_positive``: False for a negative chip;
    - ``chip_size``: the chip side in pixels, which the chip is padded to;
    - ``chip_valid_range``: ``(lo, hi)`` in original pixels, -1 unbounded
      (:meth:`ScalePyramid.effective_range`);
    - ``chip_instance_valid``: bool ``[N]``, whether each of ``instances`` is valid at the chip's
      scale (:meth:`ScalePyramid.valid`, the rule that chose the chips).

    At build time it logs, as one warning, every annotation it does not train on and why: degenerate
    (width or height < 1, or area <= 0), outside the image, of a category not in the classes (which mmdet's
    ``CocoDataset`` skips without a word), on a skipped image, and crowd (kept as ignore regions, never
    targets). For datasets without a COCO api only the crowd (``ignore_flag``) instances are counted.

    Args:
        dataset: the wrapped dataset or its config (e.g. ``CocoDataset``) with the training pipeline
            (``LoadImageFromFile``, ``LoadAnnotations``, ``CropChip``, ...). Its ``ignore_flag``
            instances (crowd) are never targets.
        scales, valid_ranges, chip_size, chip_stride, min_iof, neg_thresholds, neg_chips_per_image:
            chip generation settings, see :class:`ChipGenerator` (defaults: the authors' COCO setting).
        proposals_file: proposals per image id (see :func:`load_proposals`) to mine negative chips
            from; None, or ``neg_chips_per_image=0``: positive chips only.
        proposals_nms_iou: NMS threshold applied to each image's proposals on load, which merges the
            proposals a file holds for several test scales (the authors: 0.7); None: none. Needs the
            score column.
        seed: names the chips of every epoch, the same on every rank.
        cache_dir: where chip tables and the pooled proposals are cached (see :func:`load_proposals`);
            ``'auto'``: ``$XDG_CACHE_HOME/mmdet_sniper/chips`` (``~/.cache/...``); None: no cache.
        device: where chips are generated (``'cpu'`` or a CUDA device).
        chip_workers: processes that make an epoch's chip table on the CPU (``ChipGenerator``'s
            ``workers``): None, one per CPU this process may use, at most 8; large datasets only (a few
            thousand images or more), the others are made in this process. The table is the same for
            any number.
        missing_images: what to do with images of the annotation file missing on disk (every image path is
            checked at build time, with ``mmengine.fileio.exists``): ``'error'``, a ``ValueError`` listing
            them; ``'skip'``, a warning listing them, and they are removed from the wrapped dataset (with
            ``get_subset_``), so no chip of theirs is ever made.
    """

    def __init__(self, dataset: Union[dict, object], scales=(3.0, 1.667, 512),
                 valid_ranges=((-1, 80), (32, 150), (120, -1)), chip_size: int = 512,
                 chip_stride: Union[int, Tuple[int, int]] = (56, 60), min_iof: float = 1 - 1e-6,
                 proposals_file: Optional[str] = None, proposals_nms_iou: Optional[float] = 0.7,
                 neg_thresholds: Tuple[int, int] = (25, 10), neg_chips_per_image: int = 2, seed: int = 0,
                 cache_dir: Optional[str] = 'auto', device: str = 'cpu', missing_images: str = 'error',
                 chip_workers: Optional[int] = None):
        # Built lazily, so that loading the annotations happens in _read_annotations, which explains
        # an empty annotation file instead of failing inside mmengine's serialisation.
        self.dataset = DATASETS.build(dict(dataset, lazy_init=True)) if isinstance(dataset, dict) else dataset
        if chip_workers is not None and (not isinstance(chip_workers, int) or chip_workers < 1):
            raise ValueError(f'chip_workers must be an int >= 1 or None (one per CPU, at most 8), got {chip_workers!r}')
        generator = ChipGenerator(scales=scales, valid_ranges=valid_ranges, chip_size=chip_size,
                                  chip_stride=chip_stride, min_iof=min_iof, neg_thresholds=neg_thresholds,
                                  neg_chips_per_image=neg_chips_per_image, device=device, workers=chip_workers)
        if proposals_nms_iou is not None and not 0 < proposals_nms_iou <= 1:
            raise ValueError(f'proposals_nms_iou must be an IoU in (0, 1] or None, got {proposals_nms_iou!r}')
        self.proposals_file = proposals_file if neg_chips_per_image > 0 else None
        self.proposals_nms_iou = proposals_nms_iou
        if missing_images not in ('error', 'skip'):
            raise ValueError(f"missing_images must be 'error' or 'skip', got {missing_images!r}")
        self.missing_images = missing_images
        self.cache_dir = default_cache_dir() if cache_dir == 'auto' else cache_dir
        self._read_annotations()
        self.chips = EpochChips(generator, self.image_sizes, self.gt_boxes, self.gt_crowd, self.proposals, seed,
                                self.cache_dir, self.image_paths)

    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo

    @property
    def pyramid(self):
        return self.chips.generator.pyramid

    def full_init(self) -> None:
        """Nothing to do: the annotations are read at build time (mmengine calls this on datasets)."""

    def _read_annotations(self) -> None:
        source = getattr(self.dataset, 'ann_file', type(self.dataset).__name__)
        empty = ValueError(f'the wrapped dataset holds no images (annotation file {source!r}); there is '
                           'nothing to make chips of')
        # mmengine serialises data_list at the end of full_init; it is read here first, as it is, and
        # serialised after the COCO api kept for the report is gone, so the peak stays mmdet's own.
        serialize = getattr(self.dataset, 'serialize_data', False) and \
            not getattr(self.dataset, '_fully_initialized', False) and hasattr(self.dataset, '_serialize_data')
        if serialize:
            self.dataset.serialize_data = False
        try:
            coco = self._full_init_keeping_coco()
        except json.JSONDecodeError as error:
            size = f'{osp.getsize(source)} bytes' if osp.isfile(source) else 'not a local file'
            raise ValueError(f'annotation file {source!r} is not valid JSON ({size}): {error}') from error
        except ValueError as error:
            if getattr(self.dataset, 'data_list', None) == []:
                raise empty from error
            raise
        if len(self.dataset) == 0:
            raise empty
        images = _ImageAnnotations.read(self.dataset)
        missing = self._drop_missing_images(images)
        self._report_unused_annotations(coco, images, missing)
        del coco
        images = images.without(missing)
        if serialize:
            self.dataset.serialize_data = True
            self.dataset.data_bytes, self.dataset.data_address = self.dataset._serialize_data()
        self.image_sizes, self.gt_boxes, self.gt_crowd = images.sizes, images.boxes, images.crowd
        self.image_ids, self.image_paths = images.ids, images.paths
        self.proposals = None
        if self.proposals_file is not None:
            self.proposals = load_proposals(self.proposals_file, self.image_ids.tolist(), self.proposals_nms_iou,
                                            self.cache_dir)

    def _full_init_keeping_coco(self):
        """Loads the wrapped dataset; returns its COCO api object (None for datasets without one).

        mmdet's ``CocoDataset`` deletes its COCO api once loaded, and with it the annotations it skipped:
        the api it makes through ``COCOAPI`` is kept here, for :meth:`_report_unused_annotations`. An api
        other than pycocotools' (LVIS's) is not kept.
        """
        api = getattr(self.dataset, 'COCOAPI', None)
        if api is None or getattr(self.dataset, '_fully_initialized', False):
            self.dataset.full_init()
            return None
        made = []

        def keep(*args, **kwargs):
            made.append(api(*args, **kwargs))
            return made[-1]

        self.dataset.COCOAPI = keep
        try:
            self.dataset.full_init()
        finally:
            del self.dataset.COCOAPI
        if made and hasattr(made[-1], 'imgToAnns') and hasattr(self.dataset, 'cat_ids'):
            return made[-1]
        return None

    def _drop_missing_images(self, images: '_ImageAnnotations') -> np.ndarray:
        """Whether each image is missing on disk, bool ``[I]``. Missing images are an error, or with
        ``missing_images='skip'`` a warning and their removal from the wrapped dataset, so that its indices
        stay the chips' image indices."""
        backend_args = getattr(self.dataset, 'backend_args', None)
        absent = np.array([not fileio.exists(path, backend_args) for path in images.paths.tolist()], dtype=bool)
        missing = images.paths[absent].tolist()
        if not missing:
            return absent
        listed = ', '.join(missing[:10]) + (f' and {len(missing) - 10} more' if len(missing) > 10 else '')
        if self.missing_images == 'error' or len(missing) == len(images.paths):
            advice = ('; set missing_images=\'skip\' to train without them' if len(missing) < len(images.paths)
                      else ': no image is left to train on')
            raise ValueError(f'{len(missing)} of the {len(images.paths)} images of the annotation file are missing: '
                             f'{listed}{advice}')
        if not hasattr(self.dataset, 'get_subset_'):
            raise ValueError(f'missing_images=\'skip\' needs a wrapped dataset with get_subset_ (an mmengine '
                             f'BaseDataset), got {type(self.dataset).__name__}')
        self.dataset.get_subset_(np.flatnonzero(~absent).tolist())
        print_log(f'SNIPER skips {len(missing)} of the {len(images.paths)} images of the annotation file, missing on '
                  f'disk (missing_images=\'skip\'): {listed}', logger='current', level=logging.WARNING)
        return absent

    def _report_unused_annotations(self, coco, images: '_ImageAnnotations', missing: np.ndarray) -> None:
        """Logs every annotation that is no target, by reason, with counts and examples.

        mmdet's ``CocoDataset`` skips annotations that are degenerate, outside their image or of another
        category without a word; they are found here in the COCO api ``coco`` by mmdet's rules. Without one
        (other datasets), only the crowd instances (``ignore_flag``) are counted.
        """
        reasons = {}

        def note(reason, example, count=1):
            total, examples = reasons.get(reason, (0, []))
            reasons[reason] = (total + count, examples + [example] if len(examples) < 5 else examples)

        crowd = 'crowd (iscrowd=1), kept as ignore regions: never targets'
        if coco is None:
            for i in np.flatnonzero(images.crowd.counts > 0).tolist():
                for j in np.flatnonzero(images.crowd[i]).tolist():
                    note(crowd, f'{images.paths[i]} instance {j}')
        else:
            held = {image_id: i for i, image_id in enumerate(images.ids.tolist())}
            boxes_held = images.boxes.counts.tolist()
            cat_ids = set(self.dataset.cat_ids)
            for image_id, anns in coco.imgToAnns.items():
                image = coco.imgs[image_id]
                index, kept = held.get(image_id), 0
                for ann in anns:
                    x1, y1, w, h = ann['bbox']
                    if ann.get('ignore', False):
                        reason = 'marked ignore'
                    elif w < 1 or h < 1 or ann['area'] <= 0:
                        reason = 'degenerate (width or height < 1, or area <= 0)'
                    elif min(x1 + w, image['width']) <= max(x1, 0) or min(y1 + h, image['height']) <= max(y1, 0):
                        reason = 'outside the image'
                    elif ann['category_id'] not in cat_ids:
                        reason = 'of a category not in the classes'
                    else:
                        kept += 1
                        if index is None:
                            reason = 'on an image the wrapped dataset left out (filter_cfg or indices)'
                        elif missing[index]:
                            reason = 'on an image missing on disk (missing_images=\'skip\')'
                        elif ann.get('iscrowd', False):
                            reason = crowd
                        else:
                            continue
                    note(reason, f'id {ann["id"]} ({image["file_name"]})')
                if index is not None and kept > boxes_held[index]:
                    # A dataset class with its own rules (a subclass of CocoDataset) dropped others.
                    note(f'dropped by {type(self.dataset).__name__} for a reason not known here',
                         f'image {image["file_name"]}', kept - boxes_held[index])
        if not reasons:
            return
        lines = [f'{reason}: {count}, e.g. {"; ".join(examples)}' for reason, (count, examples) in reasons.items()]
        total = len(coco.anns) if coco is not None else len(images.boxes.flat)
        print_log(f'SNIPER does not train on these of the {total} annotations of '
                  f'{getattr(self.dataset, "ann_file", type(self.dataset).__name__)}:\n  ' + '\n  '.join(lines),
                  logger='current', level=logging.WARNING)

    def get_data_info(self, key: ChipKey) -> dict:
        """The wrapped dataset's data info of the chip's image, with the chip's fields added."""
        _check_key(key)
        info = self.dataset.get_data_info(key.image_index)
        factors = np.array(key.scale_factor, dtype=np.float32)
        width, height = self.image_sizes[key.image_index]
        boxes = np.array([inst['bbox'] for inst in info.get('instances', [])], dtype=np.float64).reshape(-1, 4)
        boxes = np.clip(boxes, 0, [width, height, width, height])
        valid = self.pyramid.valid(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], key.scale_index,
                                   np.broadcast_to(factors, (len(boxes), 2)), key.stride)
        info.update(chip=np.array(key.chip, dtype=np.float32), chip_scale_factor=factors,
                    chip_size=self.chips.generator.chip_size, chip_scale_index=key.scale_index,
                    chip_positive=key.positive, chip_valid_range=self.pyramid.effective_range(key.scale_index),
                    chip_instance_valid=valid)
        return info

    def __getitem__(self, key: ChipKey) -> dict:
        info = self.get_data_info(key)
        where = (f'chip {list(key.chip)} at scale {key.scale_index} of image {info.get("img_path")} '
                 f'(image index {key.image_index}, epoch {key.epoch})')
        try:
            results = self.dataset.pipeline(info)
        except Exception as error:
            add_note(error, f'while loading {where}')
            raise
        if results is None:
            raise ValueError(f'the pipeline dropped {where}; SniperDataset needs every chip it samples')
        return results


def _check_key(key) -> None:
    if not isinstance(key, ChipKey):
        hint = (' (a row number means nothing without an epoch: use ChipKey.of(dataset.chips.table(epoch), row, '
                'epoch))' if isinstance(key, numbers.Integral) else '')
        raise TypeError(f'SniperDataset items are indexed by a ChipKey, got {type(key).__name__}{hint}')


class _ImageAnnotations:
    """What chips are made of, read from every image's data info: sizes, ids, paths, and the boxes and
    crowd flags of its instances, as a few numpy arrays."""

    def __init__(self, sizes: np.ndarray, ids: np.ndarray, paths: np.ndarray, boxes: RaggedArray,
                 crowd: RaggedArray):
        self.sizes, self.ids, self.paths, self.boxes, self.crowd = sizes, ids, paths, boxes, crowd

    @classmethod
    def read(cls, dataset) -> '_ImageAnnotations':
        # An unserialised mmengine dataset's get_data_info deep-copies each info; they are only read here.
        data_list = getattr(dataset, 'data_list', None)
        plain = isinstance(dataset, BaseDataset) and type(dataset).get_data_info is BaseDataset.get_data_info \
            and not getattr(dataset, 'serialize_data', False) and isinstance(data_list, list) \
            and len(data_list) == len(dataset)
        infos = data_list if plain else (dataset.get_data_info(i) for i in range(len(dataset)))
        sizes, ids, paths, counts, boxes, crowd = [], [], [], [], [], []
        for i, info in enumerate(infos):
            if 'width' not in info or 'height' not in info:
                raise ValueError(f'image {info.get("img_path", i)} has no width/height in its data info; '
                                 'SniperDataset needs the image sizes to make chips')
            instances = info.get('instances', ())
            sizes.append((info['width'], info['height']))
            ids.append(info.get('img_id', i))
            paths.append(info.get('img_path', str(i)))
            counts.append(len(instances))
            boxes.extend(instance['bbox'] for instance in instances)
            crowd.extend(bool(instance.get('ignore_flag', 0)) for instance in instances)
        offsets = np.concatenate([[0], np.cumsum(np.array(counts, dtype=np.int64))])
        return cls(np.array(sizes, dtype=np.int64).reshape(-1, 2), np.array(ids), np.array(paths),
                   RaggedArray(np.array(boxes, dtype=np.float32).reshape(-1, 4), offsets),
                   RaggedArray(np.array(crowd, dtype=bool), offsets))

    def without(self, dropped: np.ndarray) -> '_ImageAnnotations':
        """The images but those where ``dropped`` (bool ``[I]``) is set."""
        if not dropped.any():
            return self
        kept, rows = ~dropped, np.repeat(~dropped, self.boxes.counts)
        offsets = np.concatenate([[0], np.cumsum(self.boxes.counts[kept])])
        return _ImageAnnotations(self.sizes[kept], self.ids[kept], self.paths[kept], RaggedArray(self.boxes.flat[rows],
                                 offsets), RaggedArray(self.crowd.flat[rows], offsets))
