import pytest
import torch

from box_factories import random_boxes
from mmdet_sniper.compat import opcheck
from mmdet_sniper.ops import assign_boxes_to_chips, reference


class TestAssignBoxesToChips:

    @pytest.mark.parametrize('B,K,N', [(1, 1, 1), (3, 7, 50), (2, 40, 300), (0, 3, 3), (2, 0, 5), (2, 4, 0)])
    def test_matches_reference(self, device, gen, B, K, N):
        boxes = random_boxes(gen, B, N)
        chips = random_boxes(gen, B, K)
        chip_index, part = assign_boxes_to_chips(boxes.to(device), chips.to(device))
        assert chip_index.shape == (B, N) and chip_index.dtype == torch.int64 and part.shape == (B, N, 4)
        expected_index, expected_part = reference.assign_boxes_to_chips(boxes, chips)
        torch.testing.assert_close(chip_index.cpu(), expected_index)
        torch.testing.assert_close(part.cpu(), expected_part)

    def test_hand_computed(self, device):
        chips = torch.tensor([[[0, 0, 100, 100], [50, 0, 150, 100], [0, 0, 100, 100]]],
                             dtype=torch.float32, device=device)
        boxes = torch.tensor([[
            [10, 10, 20, 20],     # wholly in chips 0 and 2 (and not 1): the lowest index wins
            [60, 10, 80, 20],     # wholly in all three: chip 0
            [90, 10, 140, 20],    # 10 of 50 px in chip 0, all in chip 1
            [200, 10, 210, 20],   # in none
            [30, 30, 30, 40],     # empty
        ]], dtype=torch.float32, device=device)
        chip_index, part = assign_boxes_to_chips(boxes, chips)
        assert chip_index[0].cpu().tolist() == [0, 0, 1, -1, -1]
        assert part[0].cpu().tolist() == [[10, 10, 20, 20], [60, 10, 80, 20], [40, 10, 90, 20], [0, 0, 0, 0],
                                          [0, 0, 0, 0]]

    def test_opcheck(self, device, gen):
        opcheck(torch.ops.sniper.assign_boxes_to_chips.default,
                (random_boxes(gen, 2, 9).to(device), random_boxes(gen, 2, 4).to(device)))
