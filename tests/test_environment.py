"""The dev environment holds what mmdet-sniper builds on, with mmcv's compiled ops working."""
import mmcv
import mmdet
import mmengine
import torch

from mmdet_sniper import ops


def test_pinned_versions():
    assert torch.__version__.split('+')[0] == '2.13.0'
    assert mmcv.__version__ == '2.1.0'
    assert mmengine.__version__ == '0.10.7'
    assert mmdet.__version__ == '3.3.0'


def test_mmcv_compiled_ops_run():
    from mmcv.ops import nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_sniper_ops_are_registered_for_cpu():
    for op in ops.__all__:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f'sniper::{op}', 'CPU')
