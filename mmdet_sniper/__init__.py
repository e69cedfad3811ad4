"""mmdet-sniper: SNIPER efficient multi-scale training as an MMDetection 3.x add-on.

``mmdet_sniper.ops`` needs only torch, so the compiled ops can be tested and benchmarked on a
machine without mmcv or mmdet.
"""
__version__ = '0.1.0'
