"""COCO-like boxes and RPN-like proposals for exercising chip generation, without images."""
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np


@dataclass
class ChipWorkload:
    image_sizes: np.ndarray  # int64 [I, 2] (width, height)
    gt_boxes: List[np.ndarray]  # float32 [N_i, 4] per image
    gt_crowd: List[np.ndarray]  # bool [N_i] per image
    proposals: List[np.ndarray]  # float32 [P_i, 5] per image (x1, y1, x2, y2, score)


def _random_boxes(rng: np.random.Generator, count: int, width: float, height: float,
                  side_range: Tuple[float, float], aspect_range: Tuple[float, float]) -> np.ndarray:
    """Boxes of log-uniform size sqrt(w * h) and log-uniform aspect w / h, centred anywhere in the
    image (so some stick out of it)."""
    size = np.exp(rng.uniform(np.log(side_range[0]), np.log(side_range[1]), count))
    aspect = np.exp(rng.uniform(np.log(aspect_range[0]), np.log(aspect_range[1]), count))
    w, h = size * np.sqrt(aspect), size / np.sqrt(aspect)
    cx, cy = rng.uniform(0, width, count), rng.uniform(0, height, count)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def random_chip_workload(num_images: int, rng: np.random.Generator, image_size=(640, 480),
                         boxes_per_image: float = 7.0, side_range=(8.0, 400.0), aspect_range=(0.5, 2.0),
                         proposals_per_image: int = 300, crowd_fraction: float = 0.0) -> ChipWorkload:
    """Images of ``image_size`` (an int pair, or a ``((min_w, max_w), (min_h, max_h))`` range) with a
    Poisson number of boxes, and proposals half scattered like an RPN's background responses and
    half jittered around the ground truth."""
    if isinstance(image_size[0], (tuple, list)):
        widths = rng.integers(image_size[0][0], image_size[0][1] + 1, num_images)
        heights = rng.integers(image_size[1][0], image_size[1][1] + 1, num_images)
    else:
        widths = np.full(num_images, image_size[0])
        heights = np.full(num_images, image_size[1])
    gt_boxes, gt_crowd, proposals = [], [], []
    for w, h in zip(widths, heights):
        gt = _random_boxes(rng, rng.poisson(boxes_per_image), w, h, side_range, aspect_range)
        gt_boxes.append(gt)
        gt_crowd.append(rng.random(len(gt)) < crowd_fraction)
        scattered = _random_boxes(rng, proposals_per_image - proposals_per_image // 2 * (len(gt) > 0), w, h,
                                  side_range, aspect_range)
        around = np.zeros((0, 4), np.float32)
        if len(gt):
            source = gt[rng.integers(0, len(gt), proposals_per_image // 2)]
            wh = np.tile(source[:, 2:] - source[:, :2], 2)
            around = (source + rng.normal(0, 0.15, (len(source), 4)) * wh).astype(np.float32)
            around[:, 2:] = np.maximum(around[:, 2:], around[:, :2] + 1)
        boxes = np.concatenate([scattered, around])
        proposals.append(np.concatenate([boxes, rng.random((len(boxes), 1), dtype=np.float32)], axis=1))
    return ChipWorkload(np.stack([widths, heights], axis=1).astype(np.int64), gt_boxes, gt_crowd, proposals)
