import pytest
import torch

from box_factories import random_boxes
from mmdet_sniper.compat import opcheck
from mmdet_sniper.ops import chip_coverage, reference


class TestChipCoverage:

    @pytest.mark.parametrize('mode', ['iof', 'iou'])
    @pytest.mark.parametrize('B,K,N', [(1, 1, 1), (3, 17, 29), (2, 300, 150), (0, 5, 5), (2, 0, 5),
                                       (2, 5, 0)])
    def test_matches_reference(self, device, gen, mode, B, K, N):
        chips = random_boxes(gen, B, K).to(device)
        boxes = random_boxes(gen, B, N).to(device)
        out = chip_coverage(chips, boxes, mode)
        assert out.shape == (B, K, N) and out.dtype == torch.float32 and out.device == chips.device
        torch.testing.assert_close(out, reference.chip_coverage(chips, boxes, mode))

    def test_hand_computed(self, device):
        chips = torch.tensor([[[0, 0, 10, 10]]], dtype=torch.float32, device=device)
        boxes = torch.tensor([[
            [2, 2, 6, 6],      # wholly inside
            [5, 0, 15, 10],    # right half inside
            [0, 0, 10, 10],    # the chip itself
            [0, 0, 20, 20],    # contains the chip
            [10, 0, 20, 10],   # touches the right edge from outside
            [6, 6, 10, 10],    # touches the corner from inside
            [30, 30, 40, 40],  # far away
        ]], dtype=torch.float32, device=device)
        iof = chip_coverage(chips, boxes, 'iof')[0, 0].cpu()
        iou = chip_coverage(chips, boxes, 'iou')[0, 0].cpu()
        torch.testing.assert_close(iof, torch.tensor([1.0, 0.5, 1.0, 0.25, 0.0, 1.0, 0.0]))
        torch.testing.assert_close(iou, torch.tensor([0.16, 0.5 / 1.5, 1.0, 0.25, 0.0, 0.16, 0.0]))
        # A box wholly inside is covered exactly, so thresholds like iof >= 1 - 1e-6 are safe.
        assert iof[0].item() == 1.0 and iof[5].item() == 1.0

    def test_empty_boxes_and_chips_cover_nothing(self, device):
        chips = torch.tensor([[[0, 0, 100, 100], [50, 50, 50, 80], [0, 0, 0, 0]]], dtype=torch.float32,
                             device=device)
        boxes = torch.tensor([[[0, 0, 0, 0], [10, 10, 10, 20], [20, 20, 10, 30], [10, 10, 20, 20]]],
                             dtype=torch.float32, device=device)
        for mode in ('iof', 'iou'):
            out = chip_coverage(chips, boxes, mode).cpu()
            assert (out[0, :, :3] == 0).all(), 'empty boxes must cover nothing'
            assert (out[0, 1:, :] == 0).all(), 'empty chips must cover nothing'
            assert out[0, 0, 3] > 0

    def test_non_contiguous_inputs(self, device, gen):
        chips = random_boxes(gen, 4, 6).to(device).transpose(0, 1).contiguous().transpose(0, 1)
        boxes = random_boxes(gen, 4, 40, empty_fraction=0.0).to(device)[:, ::2]
        assert not chips.is_contiguous() and not boxes.is_contiguous()
        torch.testing.assert_close(chip_coverage(chips, boxes), reference.chip_coverage(chips, boxes))

    @pytest.mark.parametrize('mode', ['iof', 'iou'])
    def test_opcheck(self, device, gen, mode):
        chips = random_boxes(gen, 2, 7).to(device)
        boxes = random_boxes(gen, 2, 11).to(device)
        opcheck(torch.ops.sniper.chip_coverage.default, (chips, boxes), {'mode': mode})

    def test_traces_under_torch_compile(self, device, gen):
        chips = random_boxes(gen, 2, 7).to(device)
        boxes = random_boxes(gen, 2, 11).to(device)
        compiled = torch.compile(lambda c, b: chip_coverage(c, b) >= 0.5, backend='aot_eager', fullgraph=True)
        torch.testing.assert_close(compiled(chips, boxes), reference.chip_coverage(chips, boxes) >= 0.5)
