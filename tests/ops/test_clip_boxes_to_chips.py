import pytest
import torch

from box_factories import random_boxes
from mmdet_sniper.compat import opcheck
from mmdet_sniper.ops import chip_coverage, clip_boxes_to_chips, reference


class TestClipBoxesToChips:

    @pytest.mark.parametrize('B,K,N', [(1, 1, 1), (3, 17, 29), (2, 120, 200), (0, 3, 3), (2, 0, 3),
                                       (2, 3, 0)])
    def test_matches_reference(self, device, gen, B, K, N):
        boxes = random_boxes(gen, B, N).to(device)
        chips = random_boxes(gen, B, K).to(device)
        clipped, iof = clip_boxes_to_chips(boxes, chips)
        assert clipped.shape == (B, K, N, 4) and iof.shape == (B, K, N)
        expected_clipped, expected_iof = reference.clip_boxes_to_chips(boxes, chips)
        torch.testing.assert_close(clipped, expected_clipped)
        torch.testing.assert_close(iof, expected_iof)
        torch.testing.assert_close(iof, chip_coverage(chips, boxes, 'iof'))

    def test_hand_computed(self, device):
        chips = torch.tensor([[[100, 200, 612, 712]]], dtype=torch.float32, device=device)
        boxes = torch.tensor([[
            [150, 250, 170, 300],   # inside
            [50, 250, 150, 270],    # half cut by the left edge
            [600, 700, 640, 740],   # over the bottom-right corner: 12 x 12 of 40 x 40
            [700, 100, 800, 150],   # outside
            [100, 200, 612, 712],   # the chip itself
            [300, 300, 300, 310],   # empty
        ]], dtype=torch.float32, device=device)
        clipped, iof = clip_boxes_to_chips(boxes, chips)
        torch.testing.assert_close(clipped[0, 0].cpu(), torch.tensor([
            [50, 50, 70, 100], [0, 50, 50, 70], [500, 500, 512, 512], [512, 0, 512, 0], [0, 0, 512, 512],
            [200, 100, 200, 110]], dtype=torch.float32))
        torch.testing.assert_close(iof[0, 0].cpu(), torch.tensor([1.0, 0.5, 144 / 1600, 0.0, 1.0, 0.0]))
        outside = clipped[0, 0, 3]
        assert outside[2] <= outside[0] or outside[3] <= outside[1], 'a box outside the chip must come out empty'

    def test_non_contiguous_inputs(self, device, gen):
        boxes = random_boxes(gen, 2, 30).to(device)[:, 1::3]
        chips = random_boxes(gen, 5, 2).to(device).transpose(0, 1)
        expected = reference.clip_boxes_to_chips(boxes, chips)
        torch.testing.assert_close(clip_boxes_to_chips(boxes, chips), expected)

    def test_opcheck(self, device, gen):
        boxes = random_boxes(gen, 2, 11).to(device)
        chips = random_boxes(gen, 2, 7).to(device)
        opcheck(torch.ops.sniper.clip_boxes_to_chips.default, (boxes, chips))

    def test_traces_under_torch_compile(self, device, gen):
        boxes = random_boxes(gen, 2, 11).to(device)
        chips = random_boxes(gen, 2, 7).to(device)
        compiled = torch.compile(lambda b, c: clip_boxes_to_chips(b, c)[0].sum(-1), backend='aot_eager',
                                 fullgraph=True)
        torch.testing.assert_close(compiled(boxes, chips), reference.clip_boxes_to_chips(boxes, chips)[0].sum(-1))
