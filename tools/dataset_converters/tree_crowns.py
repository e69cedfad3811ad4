"""Aerial tree crowns (Pascal VOC xml) as COCO, split into spatially disjoint train and val images.

The source is the labelled aerial RGB images shipped in the ``deepforest`` wheel (``deepforest/data``).
Every crown becomes the one class ``tree``: SOAP_061 labels its crowns ``Dead``/``Alive``, the other
images ``Tree``, and the demo detector has one class, so Dead and Alive are merged.

There are only four labelled images, so the split is made inside images: a large image is cut into a
grid of regions, each region is cropped into an image of its own and assigned to one split. A crown
belongs to the region that holds its box centre and is a target there, clipped to the region. The
part of it that reaches into a neighbouring region is an ``iscrowd=1`` box of that region: the crown
is visible there, so detecting it must not count as a false positive, yet it is that region's
target nowhere, so no crown is a target in both splits.

VOC corners are read as continuous pixel coordinates (box width ``xmax - xmin``), as deepforest reads
them; its boxes reach ``xmax == width``.
"""
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

CATEGORY = 'tree'
TREE_LABELS = frozenset({'Tree', 'Dead', 'Alive'})


@dataclass(frozen=True)
class VocImage:
    """One VOC annotation file: image size and its boxes, (N, 4) float64 x1, y1, x2, y2 in pixels."""
    width: int
    height: int
    boxes: np.ndarray
    labels: tuple


@dataclass(frozen=True)
class Region:
    """A pixel rectangle [x0, x1) x [y0, y1) of a source image."""
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self):
        return self.x1 - self.x0

    @property
    def height(self):
        return self.y1 - self.y0


@dataclass(frozen=True)
class RegionBoxes:
    """The boxes one region shows, in its own coordinates.

    ``boxes`` (K, 4) float64 x1, y1, x2, y2; ``iscrowd`` (K,) bool, True for parts of crowns owned by
    another region; ``crown`` (K,) int64, the index of each box's crown in the input boxes.
    """
    region: Region
    boxes: np.ndarray
    iscrowd: np.ndarray
    crown: np.ndarray


@dataclass(frozen=True)
class SourceSplit:
    """How one source image is split: a ``rows`` x ``cols`` grid; the (row, col) cells in ``val_cells``
    go to val, the others to train."""
    stem: str
    rows: int
    cols: int
    val_cells: tuple = ()


# Val is one cell of each YELL scene (209 of 951 crowns, 22%), so it measures both scenes on ground the
# detector never saw. OSBS_029 and SOAP_061 stay whole in train: one 400 px image per site is too little
# to measure a site, and SOAP_061's dead crowns look unlike any other, so holding it out would test a
# crown type never trained on.
TREE_SPLIT = (
    SourceSplit('2019_YELL_2_528000_4978000_image_crop2', 3, 3, ((2, 2), )),
    SourceSplit('2019_YELL_2_541000_4977000_image_crop', 1, 2, ((0, 0), )),
    SourceSplit('OSBS_029', 1, 1),
    SourceSplit('SOAP_061', 1, 1),
)


def parse_voc(text, name):
    """Reads a VOC annotation (``str`` or ``bytes``); ``name`` labels error messages.

    Boxes reaching outside the image are clipped to it. Raises ``ValueError`` for malformed xml, a
    missing size or coordinate, an annotation without objects (every source image is fully labelled,
    so that means a wrong file) and boxes with no area after clipping, listing each of them.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f'{name}: malformed xml: {e}') from None
    width, height = (_number(root, f'size/{key}', name, int) for key in ('width', 'height'))
    objects = root.findall('object')
    if not objects:
        raise ValueError(f'{name}: no <object> in the annotation')
    boxes = np.array([[_number(obj, f'bndbox/{key}', f'{name}: object {i}', float)
                       for key in ('xmin', 'ymin', 'xmax', 'ymax')] for i, obj in enumerate(objects)])
    labels = tuple((obj.findtext('name') or '').strip() for obj in objects)
    clipped = np.clip(boxes, 0, [width, height, width, height])
    empty = np.nonzero((clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1]))[0]
    if len(empty):
        listed = ', '.join(f'object {i} {boxes[i].tolist()}' for i in empty)
        raise ValueError(f'{name}: {len(empty)} boxes have no area inside the {width}x{height} image: {listed}')
    return VocImage(width, height, clipped, labels)


def _number(element, path, name, kind):
    text = element.findtext(path)
    try:
        return kind(float(text))
    except (TypeError, ValueError):
        raise ValueError(f'{name}: <{path}> is {text!r}, expected a number') from None


def grid_regions(width, height, rows, cols):
    """Cuts a width x height image into rows x cols regions of near-equal size, row-major."""
    xs = np.linspace(0, width, cols + 1).round().astype(int)
    ys = np.linspace(0, height, rows + 1).round().astype(int)
    return [Region(int(xs[c]), int(ys[r]), int(xs[c + 1]), int(ys[r + 1])) for r in range(rows) for c in range(cols)]


def assign_regions(boxes, regions):
    """Gives each region the boxes it shows: its own crowns as targets, its neighbours' as crowd.

    Args:
        boxes: (N, 4) x1, y1, x2, y2 with positive width and height.
        regions: ``Region`` list that must hold every box centre exactly once (a tiling, such as
            ``grid_regions``).

    Returns:
        One ``RegionBoxes`` per region, boxes clipped to the region, in crown order.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if np.any(boxes[:, 2:] <= boxes[:, :2]):
        raise ValueError('boxes must have positive width and height')
    bounds = np.array([[r.x0, r.y0, r.x1, r.y1] for r in regions], dtype=np.float64).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    holds = np.all((centres[:, None] >= bounds[None, :, :2]) & (centres[:, None] < bounds[None, :, 2:]), axis=2)
    misplaced = np.nonzero(holds.sum(1) != 1)[0]
    if len(misplaced):
        raise ValueError(f'regions must hold each box centre exactly once; crowns {misplaced.tolist()} are in '
                         f'{holds.sum(1)[misplaced].tolist()} regions')
    owner = holds.argmax(1)
    inter = np.concatenate([np.maximum(boxes[:, None, :2], bounds[None, :, :2]),
                            np.minimum(boxes[:, None, 2:], bounds[None, :, 2:])], axis=2)
    shows = np.all(inter[..., 2:] > inter[..., :2], axis=2)
    result = []
    for j, region in enumerate(regions):
        crown = np.nonzero(shows[:, j])[0]
        result.append(RegionBoxes(region, inter[crown, j] - bounds[j, [0, 1, 0, 1]], owner[crown] != j, crown))
    return result


def split_image(voc, source):
    """Splits one parsed image as ``source`` says: a list of (split, file stem, ``RegionBoxes``)."""
    unknown = sorted(set(voc.labels) - TREE_LABELS)
    if unknown:
        raise ValueError(f'{source.stem}: labels {unknown} are not tree crowns ({sorted(TREE_LABELS)})')
    regions = grid_regions(voc.width, voc.height, source.rows, source.cols)
    cells = [(r, c) for r in range(source.rows) for c in range(source.cols)]
    return [('val' if cell in source.val_cells else 'train', f'{source.stem}_r{cell[0]}c{cell[1]}', boxes)
            for cell, boxes in zip(cells, assign_regions(voc.boxes, regions))]


def build_coco(items):
    """COCO detection dict of (file name, ``RegionBoxes``) items, one ``tree`` category, ids from 1."""
    images, annotations = [], []
    for image_id, (file_name, shown) in enumerate(items, 1):
        region = shown.region
        images.append(dict(id=image_id, file_name=file_name, width=region.width, height=region.height))
        for box, crowd in zip(shown.boxes, shown.iscrowd):
            x, y, w, h = (float(v) for v in (box[0], box[1], box[2] - box[0], box[3] - box[1]))
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=1, bbox=[x, y, w, h],
                                    area=w * h, iscrowd=int(crowd)))
    return dict(images=images, annotations=annotations, categories=[dict(id=1, name=CATEGORY)])


def coco_stats(coco):
    """Images, target crowns, crowd boxes and target sizes (sqrt(w*h) in px) of a COCO dict."""
    targets = [a for a in coco['annotations'] if not a['iscrowd']]
    sizes = np.sqrt([a['area'] for a in targets])
    percentiles = (5, 25, 50, 75, 95)
    return dict(images=len(coco['images']), crowns=len(targets), crowd=len(coco['annotations']) - len(targets),
                size_percentiles=dict(zip(percentiles, np.percentile(sizes, percentiles).round(1).tolist()))
                if len(sizes) else {},
                share_below_32=float(np.mean(sizes < 32)) if len(sizes) else 0.0)
