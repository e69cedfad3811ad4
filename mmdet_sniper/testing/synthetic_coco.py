"""A deterministic synthetic detection dataset in COCO format: JPEG images with small and large
objects of a few classes on a cluttered background, for tests, benchmarks and ablations."""
import json
import os
import os.path as osp
from typing import Sequence, Tuple, Union

import numpy as np

# Each class is a shape with its own colour, so that a detector can learn it from a few images.
CLASSES = ('square', 'disc', 'bar')
_COLOURS = ((220, 40, 40), (40, 200, 60), (50, 80, 230))


def _draw_object(cv2, image: np.ndarray, label: int, box: np.ndarray) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    colour = _COLOURS[label]
    if label == 1:
        cv2.ellipse(image, ((x1 + x2) // 2, (y1 + y2) // 2), (max((x2 - x1) // 2, 1), max((y2 - y1) // 2, 1)),
                    0, 0, 360, colour, -1)
    else:
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
        if label == 2:  # a bar: a dark stripe through the middle tells it from a square
            cy, half = (y1 + y2) // 2, max((y2 - y1) // 6, 1)
            cv2.rectangle(image, (x1, cy - half), (x2 - 1, cy + half), (20, 20, 20), -1)


def _background(rng: np.random.Generator, width: int, height: int, cv2) -> np.ndarray:
    """Smooth grey noise with thin random lines: clutter that is not an object."""
    coarse = rng.uniform(60, 190, size=(max(height // 32, 2), max(width // 32, 2), 1)).astype(np.float32)
    image = cv2.resize(np.repeat(coarse, 3, axis=2), (width, height), interpolation=cv2.INTER_LINEAR)
    image = np.clip(image + rng.normal(0, 6, size=image.shape), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 9))):
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        grey = int(rng.integers(30, 230))
        cv2.line(image, p1, p2, (grey, grey, grey), int(rng.integers(1, 3)))
    return image


def write_synthetic_coco(root: str, num_images: int, seed: int = 0,
                         image_size: Union[Tuple[int, int], Tuple[Tuple[int, int], Tuple[int, int]]] = (640, 480),
                         objects_per_image: Tuple[int, int] = (3, 12), size_range: Tuple[float, float] = (8, 400),
                         crowd_fraction: float = 0.0, jpeg_quality: int = 90) -> str:
    """Writes ``root/images/{i:06d}.jpg`` and ``root/annotations.json`` and returns the json path.

    Args:
        root: output folder (created).
        num_images: images to draw.
        seed: everything is drawn from ``numpy.random.default_rng(seed)``.
        image_size: ``(width, height)``, or ``((min_w, max_w), (min_h, max_h))`` drawn per image.
        objects_per_image: ``(lo, hi)``, drawn uniformly from ``lo .. hi``.
        size_range: object size ``sqrt(w * h)`` in pixels, drawn log-uniformly (COCO has many small
            objects), capped by the image.
        crowd_fraction: the share of objects marked ``iscrowd``.
        jpeg_quality: JPEG quality of the written images.
    """
    import cv2
    if num_images < 0:
        raise ValueError(f'num_images must be >= 0, got {num_images}')
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        if isinstance(image_size[0], Sequence):
            (w_lo, w_hi), (h_lo, h_hi) = image_size
            width, height = int(rng.integers(w_lo, w_hi + 1)), int(rng.integers(h_lo, h_hi + 1))
        else:
            width, height = image_size
        image = _background(rng, width, height, cv2)
        count = int(rng.integers(objects_per_image[0], objects_per_image[1] + 1))
        for _ in range(count):
            size = float(np.exp(rng.uniform(*np.log(size_range))))
            aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            w = min(max(size * np.sqrt(aspect), 4.0), width)
            h = min(max(size / np.sqrt(aspect), 4.0), height)
            x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
            box = np.round([x1, y1, x1 + w, y1 + h])
            label = int(rng.integers(len(CLASSES)))
            _draw_object(cv2, image, label, box)
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, category_id=label + 1,
                                    bbox=[float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                                    area=float((box[2] - box[0]) * (box[3] - box[1])),
                                    iscrowd=int(rng.uniform() < crowd_fraction)))
        file_name = f'{i:06d}.jpg'
        cv2.imwrite(osp.join(root, 'images', file_name), image[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        images.append(dict(id=i + 1, file_name=file_name, width=width, height=height))
    ann_file = osp.join(root, 'annotations.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)]), f)
    return ann_file
