from .max_dets_coco_metric import MaxDetsCocoMetric
from .proposals_dump import SniperProposalsDump

__all__ = ['MaxDetsCocoMetric', 'SniperProposalsDump']
