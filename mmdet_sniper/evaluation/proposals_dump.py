"""SniperProposalsDump: writes each image's RPN proposals, pooled over the test scales, for mining
SNIPER's negative chips."""
from collections import defaultdict
from typing import Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine import fileio
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log


@METRICS.register_module()
class SniperProposalsDump(BaseMetric):
    """Collects the proposals of every test view (an image at one scale) and writes, per image id,
    the proposals of all its views: a dict ``{img_id: float32 [P, 5]}`` of ``x1, y1, x2, y2, score``
    in original-image pixels, highest score first, the format ``SniperDataset(proposals_file=...)``
    reads (which applies NMS again to pool the scales). The file type follows ``out_file``'s suffix
    (``.pkl`` or ``.json``) through ``mmengine.fileio``.

    Args:
        out_file: where to write; any mmengine.fileio backend.
        proposals_per_view: the most proposals kept per view, by score (the authors: 300).
        collect_device, prefix: as for ``BaseMetric``.
    """
    default_prefix = 'proposals'

    def __init__(self, out_file: str, proposals_per_view: int = 300, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not out_file.endswith(('.pkl', '.pickle', '.json')):
            raise ValueError(f'out_file must end with .pkl, .pickle or .json, got {out_file!r}')
        if proposals_per_view < 1:
            raise ValueError(f'proposals_per_view must be >= 1, got {proposals_per_view}')
        self.out_file = out_file
        self.proposals_per_view = proposals_per_view

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']
            scores, order = pred['scores'].sort(descending=True)
            order, scores = order[:self.proposals_per_view], scores[:self.proposals_per_view]
            boxes = pred['bboxes'][order]
            proposals = np.concatenate([boxes.cpu().numpy(), scores.cpu().numpy()[:, None]], axis=1)
            self.results.append((sample['img_id'], proposals.astype(np.float32)))

    def compute_metrics(self, results: list) -> dict:
        views = defaultdict(list)
        for img_id, proposals in results:
            views[img_id].append(proposals)
        pooled = {}
        for img_id, parts in views.items():
            proposals = np.concatenate(parts)
            pooled[img_id] = proposals[np.argsort(-proposals[:, 4], kind='stable')]
        if self.out_file.endswith('.json'):
            fileio.dump({str(k): v.tolist() for k, v in pooled.items()}, self.out_file)
        else:
            fileio.dump(pooled, self.out_file)
        per_image = float(np.mean([len(p) for p in pooled.values()])) if pooled else 0.0
        print_log(f'wrote the proposals of {len(pooled)} images ({per_image:.1f} per image) to {self.out_file}',
                  logger='current')
        return dict(images=len(pooled), per_image=per_image)
