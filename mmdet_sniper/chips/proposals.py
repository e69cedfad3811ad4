"""Proposals files: a pickle or JSON (any mmengine.fileio backend) mapping each image id to its
proposals, ``[P, 4]`` or ``[P, 5]`` (x1, y1, x2, y2[, score]) in original-image pixels."""
from typing import List, Sequence

import numpy as np


def load_proposals(path: str, image_ids: Sequence) -> List[np.ndarray]:
    """The proposals of each of ``image_ids``, in that order, as float32 ``[P, 4]`` or ``[P, 5]``
    arrays (an image may have none). The file must hold exactly these images: a file made for another
    dataset is an error that lists a few ids of each side; malformed arrays name their image."""
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
        boxes = np.asarray(proposals[i], dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 5)
        if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
            raise ValueError(f'{path}: the proposals of image {i} must have shape [P, 4] or [P, 5] (x1, y1, x2, y2[, '
                             f'score]), got {boxes.shape}')
        if not np.isfinite(boxes).all():
            raise ValueError(f'{path}: the proposals of image {i} hold NaN or infinite values')
        arrays.append(boxes)
    return arrays
