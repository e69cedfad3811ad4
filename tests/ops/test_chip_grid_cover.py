import pytest
import torch

from box_factories import random_boxes
from mmdet_sniper.compat import opcheck
from mmdet_sniper.ops import chip_coverage, chip_grid_cover, greedy_chip_cover, reference
from mmdet_sniper.ops.grid_cover import candidate_grid, dense_chip_grid_cover
from mmdet_sniper.ops.splitmix64 import nth


def random_grid_inputs(gen, B, N, max_size=2600):
    sizes = torch.randint(1, max_size, (B, 2), generator=gen)
    # Boxes spread over (and a little beyond) each item's own image.
    boxes = random_boxes(gen, B, N, image_size=1.0)
    scale = sizes.repeat(1, 2)[:, None, :].float()
    boxes = torch.where(boxes != 0, boxes * scale, boxes).contiguous()
    keys = torch.randint(-2**63, 2**63 - 1, (B,), generator=gen)
    return boxes, sizes, keys


class TestChipGridCover:

    @pytest.mark.parametrize('min_count', [1, 3])
    @pytest.mark.parametrize('chip_size,stride', [(512, 56), (512, 59), (256, 32), (100, 7)])
    @pytest.mark.parametrize('B,N', [(1, 1), (6, 30), (3, 150)])
    def test_matches_reference(self, device, gen, B, N, chip_size, stride, min_count):
        boxes, sizes, keys = random_grid_inputs(gen, B, N)
        chips, box_pick = chip_grid_cover(boxes.to(device), sizes.to(device), keys.to(device), chip_size, stride,
                                          1 - 1e-6, min_count)
        assert chips.shape == (B, N, 4) and box_pick.shape == (B, N) and box_pick.dtype == torch.int64
        expected_chips, expected_pick = reference.chip_grid_cover(boxes, sizes, keys, chip_size, stride, 1 - 1e-6,
                                                                  min_count)
        torch.testing.assert_close(chips.cpu(), expected_chips)
        torch.testing.assert_close(box_pick.cpu(), expected_pick)

    @pytest.mark.parametrize('min_iof', [0.5, 0.9, 1.0])
    def test_partial_coverage_thresholds_match_reference(self, device, gen, min_iof):
        boxes, sizes, keys = random_grid_inputs(gen, 4, 60)
        out = chip_grid_cover(boxes.to(device), sizes.to(device), keys.to(device), 300, 40, min_iof)
        expected = reference.chip_grid_cover(boxes, sizes, keys, 300, 40, min_iof)
        for got, want in zip(out, expected):
            torch.testing.assert_close(got.cpu(), want)

    def test_dense_composition_of_the_compiled_ops_matches_kernel(self, gen):
        # The composition is what runs on CUDA; on the CPU it must agree with the grid kernel.
        boxes, sizes, keys = random_grid_inputs(gen, 5, 80)
        dense = dense_chip_grid_cover(boxes, sizes, keys, 512, 57, 1 - 1e-6, 2, coverage=chip_coverage,
                                      greedy=greedy_chip_cover, max_pairs=3000)  # several chunks
        for got, want in zip(dense, chip_grid_cover(boxes, sizes, keys, 512, 57, 1 - 1e-6, 2)):
            torch.testing.assert_close(got, want)

    def test_candidate_grid_hand_computed(self):
        # 600 x 500 image, 512 chips, stride 56: x edges 0, 56 (multiples below 88) and 88 (flush);
        # y edges 0 and 500 - 512 < 0 -> one row spanning the whole height.
        keys = nth(7, 0)[None]
        chips, k = candidate_grid(torch.tensor([[600, 500]]).numpy(), 512, 56, keys)
        found = {int(kk): tuple(c) for kk, c in zip(k[0], chips[0].tolist()) if kk >= 0}
        assert found == {0: (0, 0, 512, 500), 1: (56, 0, 568, 500), 2: (88, 0, 600, 500)}
        priorities = [int(nth(keys[0], kk)) for kk in k[0]]
        assert priorities == sorted(priorities), 'candidates must come in shuffled (priority) order'

    @pytest.mark.parametrize('key', [1, 2, 3, 4])
    def test_hand_computed_cover(self, device, key):
        # 1200 x 600 image, chip 512, stride 100: x edges 0, 100, ..., 600 and 688 (flush), nx = 8;
        # y edges 0 and 88. Boxes A and C fit the windows at x = 0 with y = 0 or 88 (candidates k = 0
        # and k = 8): a tie the shuffle breaks. Box B, on the bottom-right border, fits only the
        # flush corner window (688, 88). D is wider than a chip and E is empty: neither is covered.
        boxes = torch.tensor([[[10, 100, 50, 150], [1150, 500, 1200, 600], [400, 100, 450, 150],
                               [0, 0, 600, 100], [5, 5, 5, 9]]], dtype=torch.float32, device=device)
        chips, box_pick = chip_grid_cover(boxes, torch.tensor([[1200, 600]], device=device),
                                          torch.tensor([key], device=device), 512, 100)
        y_first = 0 if int(nth(key, 0)) < int(nth(key, 8)) else 88
        assert chips[0].cpu().tolist() == [[0, y_first, 512, y_first + 512], [688, 88, 1200, 600],
                                           [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
        assert box_pick[0].cpu().tolist() == [0, 1, 0, -1, -1]

    def test_images_smaller_than_a_chip_get_one_whole_image_chip(self, device):
        boxes = torch.tensor([[[1, 1, 20, 20], [200, 100, 300, 140]]], dtype=torch.float32, device=device)
        chips, box_pick = chip_grid_cover(boxes, torch.tensor([[320, 150]], device=device),
                                          torch.tensor([0], device=device), 512, 56)
        assert chips[0, 0].cpu().tolist() == [0, 0, 320, 150]
        assert box_pick[0].cpu().tolist() == [0, 0]

    def test_every_coverable_box_is_covered(self, device, gen):
        boxes, sizes, keys = random_grid_inputs(gen, 8, 50)
        chips, box_pick = chip_grid_cover(boxes.to(device), sizes.to(device), keys.to(device), 512, 58)
        grid, _ = candidate_grid(sizes.numpy(), 512, 58, keys.numpy().astype('uint64'))
        coverable = (reference.chip_coverage(torch.from_numpy(grid), boxes) >= 1 - 1e-6).any(1)
        assert torch.equal(box_pick.cpu() >= 0, coverable)
        # Each box's pick holds it.
        picked = torch.gather(chips.cpu(), 1, box_pick.clamp(min=0).cpu()[..., None].expand(-1, -1, 4))
        iof = reference.chip_coverage(picked.reshape(-1, 1, 4), boxes.reshape(-1, 1, 4)).flatten()
        assert bool((iof[coverable.flatten()] >= 1 - 1e-6).all())

    def test_different_keys_break_ties_differently(self, gen):
        # One small box in the middle of a big image fits dozens of windows, all tied.
        boxes = torch.tensor([[[1000, 1000, 1010, 1010]]], dtype=torch.float32).expand(64, -1, -1).contiguous()
        sizes = torch.tensor([[2000, 2000]]).expand(64, -1).contiguous()
        chips, _ = chip_grid_cover(boxes, sizes, torch.arange(64), 512, 56)
        assert len({tuple(c) for c in chips[:, 0].tolist()}) > 10

    @pytest.mark.parametrize('B,N', [(0, 5), (3, 0)])
    def test_empty_inputs(self, device, B, N):
        args = (torch.zeros(B, N, 4), torch.ones(B, 2, dtype=torch.int64), torch.zeros(B, dtype=torch.int64), 512, 56)
        chips, box_pick = chip_grid_cover(*(a.to(device) if torch.is_tensor(a) else a for a in args))
        assert chips.shape == (B, N, 4) and box_pick.shape == (B, N)
        # The reference is the dense composition that chip_grid_cover runs on CUDA.
        expected_chips, expected_pick = reference.chip_grid_cover(*args)
        torch.testing.assert_close(chips.cpu(), expected_chips)
        torch.testing.assert_close(box_pick.cpu(), expected_pick)

    def test_opcheck(self, device, gen):
        boxes, sizes, keys = random_grid_inputs(gen, 3, 9)
        opcheck(torch.ops.sniper.chip_grid_cover.default,
                (boxes.to(device), sizes.to(device), keys.to(device), 512, 56, 1 - 1e-6, 1))
