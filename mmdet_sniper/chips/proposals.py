"""Proposals files: a pickle or JSON (any mmengine.fileio backend) mapping each image id to its
proposals, ``[P, 4]`` or ``[P, 5]`` (x1, y1, x2, y2[, score]) in original-image pixels.

Negative chips need only each image's boxes after the NMS that pools the file's test scales. That
is computed once and kept as a compact cache, read as a memory map: every rank of a node (and of a
job, where the cache folder is shared) maps the same pages instead of unpickling its own copy. The
boxes are kept at half precision where every coordinate is below ``HALF_PRECISION_BELOW`` pixels
(docs/recipe.md): COCO's 118k images then take about 540 MB instead of 1.1 GB.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.logging import print_log

from .cache import load_or_make
from .ragged import RaggedArray

# Bump when what the cache holds changes, so that older caches are not read.
PROPOSALS_CACHE_FORMAT = 2

# float16 rounds a coordinate below 2048 px by at most 0.5 px (below 1024 px, COCO's sizes, 0.25 px):
# nothing to the chip miner, which counts proposals inside 512 px windows on a grid of about 56 px.
HALF_PRECISION_BELOW = 2048


def load_proposals(path: str, image_ids: Sequence, nms_iou: Optional[float] = None,
                   cache_dir: Optional[str] = None) -> RaggedArray:
    """The proposals of each of ``image_ids``, in that order, as ``[P_i, 4]`` boxes ``(x1, y1, x2, y2)``
    in original pixels (an image may have none), highest score first where ``nms_iou`` pools them:
    float16 where every coordinate of the file (after NMS) lies within ``HALF_PRECISION_BELOW`` px of
    0, which rounds them by at most 0.5 px, else float32.

    The file must hold exactly these images: a file made for another dataset is an error that lists a
    few ids of each side; malformed arrays name their image.

    Args:
        path: the proposals file.
        image_ids: the images, in the order wanted.
        nms_iou: NMS IoU threshold applied to each image's proposals (needs the score column); None: none,
            the boxes are kept in the file's order.
        cache_dir: where the result is cached, for a local ``path``: the first process to need it (under a
            lock) writes ``proposals-<digest>/`` there, which every later call maps read-only. The digest
            covers the file's path, size and modification time, ``nms_iou`` and ``image_ids``. None: no
            cache, the result is held in memory.
    """
    if nms_iou is not None and not 0 < nms_iou <= 1:
        raise ValueError(f'nms_iou must be an IoU in (0, 1] or None, got {nms_iou!r}')
    image_ids = list(image_ids)
    if cache_dir is None or not osp.isfile(path):
        return _read(path, image_ids, nms_iou)
    folder = osp.join(cache_dir, f'proposals-{_digest(path, image_ids, nms_iou)}')
    proposals, made = load_or_make(folder, 'proposals', lambda f: _load_cached(f, len(image_ids)),
                                   lambda: _read(path, image_ids, nms_iou), _save)
    if made:
        print_log(f'SNIPER proposals of {path} ({proposals.nbytes / 2**20:.0f} MB after NMS) cached in {folder}',
                  logger='current')
        proposals = _load_cached(folder, len(image_ids))  # every process holds the same map
    return proposals


def _read(path: str, image_ids: list, nms_iou: Optional[float]) -> RaggedArray:
    from mmengine import fileio
    proposals = fileio.load(path)
    if not isinstance(proposals, dict):
        raise ValueError(f'{path} must map image ids to [P, 4] or [P, 5] arrays, got a {type(proposals).__name__}')
    # JSON keys are strings; accept them for integer image ids.
    proposals = {int(k) if isinstance(k, str) and k.lstrip('-').isdigit() else k: v for k, v in proposals.items()}
    known = set(image_ids)
    missing = [i for i in image_ids if i not in proposals]
    unknown = [k for k in proposals if k not in known]
    if missing or unknown:
        raise ValueError(f'{path} does not match the annotation file: {len(missing)} images without proposals '
                         f'(e.g. {missing[:5]}), {len(unknown)} unknown image ids (e.g. {unknown[:5]})')
    arrays = []
    for i in image_ids:
        boxes = np.asarray(proposals.pop(i), dtype=np.float32)  # popped: the file's copy is freed as we go
        if boxes.size == 0:
            boxes = boxes.reshape(0, 5)
        if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
            raise ValueError(f'{path}: the proposals of image {i} must have shape [P, 4] or [P, 5] (x1, y1, x2, y2[, '
                             f'score]), got {boxes.shape}')
        if not np.isfinite(boxes).all():
            raise ValueError(f'{path}: the proposals of image {i} hold NaN or infinite values')
        if nms_iou is not None and len(boxes):
            boxes = _suppress_overlapping(boxes, nms_iou, f'{path}: image {i}')
        arrays.append(boxes[:, :4])
    proposals = RaggedArray.from_list(arrays, np.float32, (4,))
    if len(proposals.flat) and np.abs(proposals.flat).max() >= HALF_PRECISION_BELOW:
        return proposals
    return RaggedArray(proposals.flat.astype(np.float16), proposals.offsets)


def _suppress_overlapping(proposals: np.ndarray, iou: float, where: str) -> np.ndarray:
    """One image's proposals after NMS at ``iou``, highest score first."""
    if proposals.shape[1] != 5:
        raise ValueError(f'{where}: pooling proposals by NMS needs scores, but they are [P, 4]; set '
                         'proposals_nms_iou=None to use them as they are')
    from mmcv.ops import nms
    _, keep = nms(proposals[:, :4], proposals[:, 4], iou)
    return proposals[keep]


def _digest(path: str, image_ids: list, nms_iou: Optional[float]) -> str:
    stat = os.stat(path)
    key = dict(path=osp.abspath(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns, nms_iou=nms_iou,
               format=PROPOSALS_CACHE_FORMAT)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode())
    digest.update(json.dumps([i if isinstance(i, (int, str)) else repr(i) for i in image_ids]).encode())
    return digest.hexdigest()[:20]


def _save(proposals: RaggedArray, folder: str) -> None:
    os.makedirs(folder)
    np.save(osp.join(folder, 'boxes.npy'), proposals.flat)
    np.save(osp.join(folder, 'offsets.npy'), proposals.offsets)


def _load_cached(folder: str, num_images: int) -> RaggedArray:
    """The cached proposals in ``folder``, mapped read-only; raises where they cannot be trusted."""
    boxes = np.load(osp.join(folder, 'boxes.npy'), mmap_mode='r')
    offsets = np.load(osp.join(folder, 'offsets.npy'))
    if boxes.dtype not in (np.float16, np.float32) or boxes.ndim != 2 or boxes.shape[1] != 4 \
            or len(offsets) != num_images + 1:
        raise ValueError(f'holds {boxes.dtype} boxes of shape {boxes.shape} and {len(offsets)} offsets, not '
                         f'float16 or float32 [T, 4] and {num_images + 1}')
    return RaggedArray(boxes, offsets, digest=osp.basename(folder))
