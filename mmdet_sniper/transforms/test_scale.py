"""SniperTestScale: one scale of SNIPER's multi-scale test, with the object sizes it is trusted for."""
from numbers import Real
from typing import Sequence

from mmcv.transforms import TestTimeAug
from mmdet.datasets.transforms import Resize
from mmdet.registry import TRANSFORMS

from mmdet_sniper.chips.valid_range import ValidRange


def resize_args(scale) -> dict:
    """``Resize`` arguments for one test scale: a number is a factor of the original image
    (``scale_factor``), a pair is ``(short, long)`` sides (``scale``)."""
    if isinstance(scale, Real) and not isinstance(scale, bool) and scale > 0:
        return dict(scale_factor=float(scale))
    if isinstance(scale, Sequence) and len(scale) == 2 and all(isinstance(v, Real) and v > 0 for v in scale):
        return dict(scale=tuple(scale))
    raise ValueError(f'a test scale must be a factor > 0 or a (short, long) pair of sides > 0 in pixels, got {scale!r}')


@TRANSFORMS.register_module()
class SniperTestScale(Resize):
    """mmdet's ``Resize`` with ``keep_ratio=True`` that also records the scale's valid range.

    SNIPER tests the whole image at several scales and trusts each scale only for the object sizes
    it was trained on there: small objects at the finest scale, large ones at the coarsest. Put one
    ``SniperTestScale`` per scale in ``TestTimeAug`` and ``'valid_range'`` in ``PackDetInputs``'s
    ``meta_keys``; :class:`~mmdet_sniper.models.sniper_tta.SniperTestTimeAug` drops each view's
    detections outside its range before merging the scales.

    Added key: ``valid_range``, besides ``Resize``'s.

    Args:
        valid_range: ``(lo, hi)``: this scale keeps a detection iff its area in original pixels is
            ``> lo**2`` and ``<= hi**2`` (:meth:`ValidRange.contains_test_area`); -1 leaves a side
            unbounded.
        **kwargs: ``Resize``'s arguments except ``keep_ratio``: ``scale=(1400, 2000)`` resizes the
            short side to 1400 px unless the long side would exceed 2000 px (the order in the pair
            does not matter); ``scale_factor=0.5`` resizes by a factor.
    """

    def __init__(self, valid_range: Sequence[Real], **kwargs) -> None:
        if not kwargs.pop('keep_ratio', True):
            raise ValueError('SniperTestScale always keeps the aspect ratio, as SNIPER\'s test scales do; '
                             'leave keep_ratio out')
        super().__init__(keep_ratio=True, **kwargs)
        # A plain pair: it travels in the metainfo, and the model parses it where it filters.
        self.valid_range = ValidRange.from_pair(valid_range, 'valid_range').to_pair()

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        results['valid_range'] = self.valid_range
        return results

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, valid_range={self.valid_range})'


@TRANSFORMS.register_module()
class SniperTestViews(TestTimeAug):
    """``TestTimeAug`` making SNIPER's test views: the image at each of ``scales`` with its valid
    range (:class:`SniperTestScale`), optionally each also flipped, packed with the metainfo that
    :class:`~mmdet_sniper.models.sniper_tta.SniperTestTimeAug` needs.

    Args:
        scales: per scale, a factor of the original image (``2.0``) or ``(short, long)`` sides
            (``(800, 1280)``); see :func:`resize_args`.
        valid_ranges: per scale, its ``(lo, hi)`` in original pixels (-1: unbounded; see
            :class:`SniperTestScale`).
        flip: add the horizontally flipped view of every scale. Defaults to False: the authors do not
            flip at test, and a flip doubles the test's cost.
        with_annotations: load the ground truth too (``LoadAnnotations``), for evaluation.
        meta_keys: ``PackDetInputs``'s; must hold ``valid_range``.
    """

    def __init__(self, scales: Sequence, valid_ranges: Sequence, flip: bool = False, with_annotations: bool = True,
                 meta_keys: Sequence[str] = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                                             'flip_direction', 'valid_range')) -> None:
        if len(scales) != len(valid_ranges) or not scales:
            raise ValueError(f'scales and valid_ranges must pair up, one range per scale; got {len(scales)} scales '
                             f'and {len(valid_ranges)} valid_ranges')
        # Checked here, so that an error names the scale.
        valid_ranges = [ValidRange.from_pair(r, f'valid_ranges[{i}]').to_pair() for i, r in enumerate(valid_ranges)]
        if 'valid_range' not in meta_keys:
            raise ValueError("meta_keys must hold 'valid_range': SniperTestTimeAug filters each view by it")
        transforms = [[dict(type='SniperTestScale', valid_range=r, **resize_args(s))
                       for s, r in zip(scales, valid_ranges)]]
        # Without flipped views RandomFlip(prob=0) still records flip=False, which DetTTAModel's merge
        # reads from every view.
        transforms.append([dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)] if flip else
                          [dict(type='RandomFlip', prob=0.0)])
        if with_annotations:
            transforms.append([dict(type='LoadAnnotations', with_bbox=True)])
        transforms.append([dict(type='PackDetInputs', meta_keys=tuple(meta_keys))])
        super().__init__(transforms)
