"""mmdet-sniper: SNIPER efficient multi-scale training as an MMDetection 3.x add-on.

``mmdet_sniper.ops`` and ``mmdet_sniper.chips`` need only torch and numpy, so the compiled ops can be
tested and benchmarked on a machine without mmcv or mmdet. Where mmdet is installed, importing the
package registers its datasets, transforms, samplers, hooks and models with mmdet's registries
(configs: ``custom_imports = dict(imports=['mmdet_sniper'], allow_failed_imports=False)``), and
SNIPER's configs get their mmengine name: ``_base_ = 'mmdet_sniper::sniper/sniper_faster_rcnn.py'``.
"""
import importlib.util

__version__ = '0.1.0'

if importlib.util.find_spec('mmdet') is not None:
    if importlib.util.find_spec('mmcv._ext') is None:
        import mmcv
        raise ImportError(f'mmdet-sniper needs mmcv with its compiled ops, and mmcv {mmcv.__version__} has none '
                          '(mmcv-lite, or a build without MMCV_WITH_OPS=1): install mmcv itself, a wheel for your '
                          'torch or `MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0` (README, '
                          '"Supported versions")')
    from mmengine.config.utils import MODULE2PACKAGE

    from . import (datasets, engine, evaluation, models, registry, samplers,  # noqa: F401,E402  (registration)
                   transforms)

    # mmengine resolves `pkg::` config names only for the packages in this table, in the folder of the
    # package it names, from the distribution's location: for an editable install that is site-packages,
    # not the checkout. A module's name makes it take the folder of the module's file instead, which is
    # this package's wherever it lies.
    MODULE2PACKAGE.setdefault('mmdet_sniper', 'mmdet_sniper.cli')
