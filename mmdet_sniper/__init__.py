"""mmdet-sniper: SNIPER efficient multi-scale training as an MMDetection 3.x add-on.

``mmdet_sniper.ops`` and ``mmdet_sniper.chips`` need only torch and numpy, so the compiled ops can be
tested and benchmarked on a machine without mmcv or mmdet. Where mmdet is installed, importing the
package registers its datasets, transforms, samplers, hooks and models with mmdet's registries
(configs: ``custom_imports = dict(imports=['mmdet_sniper'], allow_failed_imports=False)``).
"""
import importlib.util

__version__ = '0.1.0'

if importlib.util.find_spec('mmdet') is not None:
    from . import datasets, engine, evaluation, models, samplers, transforms  # noqa: F401,E402  (registration)
