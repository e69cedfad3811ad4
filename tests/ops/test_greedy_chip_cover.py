import pytest
import torch

from box_factories import random_boxes
from mmdet_sniper.compat import opcheck
from mmdet_sniper.ops import chip_coverage, greedy_chip_cover, reference


def greedy_cover_with_sets(covers_2d, min_count):
    """The textbook greedy set cover with Python sets: an independent check of the reference."""
    K, N = covers_2d.shape
    chip_sets = [set(torch.nonzero(covers_2d[k]).flatten().tolist()) for k in range(K)]
    uncovered = set(range(N))
    picks = []
    while len(picks) < K:
        best = max(range(K), key=lambda k: (len(chip_sets[k] & uncovered), -k))
        if len(chip_sets[best] & uncovered) < min_count:
            break
        picks.append(best)
        uncovered -= chip_sets[best]
    return picks + [-1] * (K - len(picks))


def random_covers(gen, B, K, N, density):
    return torch.rand(B, K, N, generator=gen) < density


class TestGreedyChipCover:

    @pytest.mark.parametrize('min_count', [1, 2, 5])
    @pytest.mark.parametrize('density', [0.02, 0.2, 0.7])
    @pytest.mark.parametrize('B,K,N', [(1, 1, 1), (4, 13, 37), (3, 64, 130), (2, 40, 64)])
    def test_matches_reference_and_set_cover(self, device, gen, B, K, N, density, min_count):
        covers = random_covers(gen, B, K, N, density)
        expected = torch.tensor([greedy_cover_with_sets(covers[b], min_count) for b in range(B)],
                                dtype=torch.int64).view(B, K)
        torch.testing.assert_close(reference.greedy_chip_cover(covers, min_count), expected)
        out = greedy_chip_cover(covers.to(device), min_count)
        assert out.dtype == torch.int64 and out.device == device
        torch.testing.assert_close(out.cpu(), expected)

    # The second size does not fit in a GPU block's shared memory and takes the global-memory path.
    @pytest.mark.parametrize('B,K,N', [(3, 300, 1000), (2, 100, 20000)])
    def test_large_inputs_match_reference(self, device, gen, B, K, N):
        covers = random_covers(gen, B, K, N, 0.01)
        torch.testing.assert_close(greedy_chip_cover(covers.to(device)).cpu(), reference.greedy_chip_cover(covers))

    def test_realistic_chip_selection_covers_every_coverable_box(self, device, gen):
        # 512 px chips at a 32 px stride over a 2000 px square image, boxes up to ~600 px.
        corners = torch.arange(0, 2000 - 512 + 1, 32, dtype=torch.float32)
        xy = torch.cartesian_prod(corners, corners)
        chips = torch.cat([xy, xy + 512], dim=-1).expand(2, -1, -1).contiguous()
        boxes = random_boxes(gen, 2, 100)
        covers = chip_coverage(chips, boxes) >= 1 - 1e-6
        picks = greedy_chip_cover(covers.to(device)).cpu()
        torch.testing.assert_close(picks, reference.greedy_chip_cover(covers))
        for b in range(2):
            chosen = picks[b][picks[b] >= 0]
            assert len(set(chosen.tolist())) == len(chosen), 'a chip was picked twice'
            assert torch.equal(covers[b, chosen].any(0), covers[b].any(0)), 'a coverable box was left out'

    def test_hand_built_cover(self, device):
        covers = torch.tensor([[
            [1, 1, 0, 0, 0, 0],
            [0, 1, 1, 1, 0, 0],  # covers the most boxes: picked first
            [0, 0, 0, 1, 1, 0],
            [1, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0],
        ]], dtype=torch.bool, device=device)
        # After chip 1, chip 0 adds {0}, chip 2 adds {4} and chip 3 adds {0, 4}: chip 3 is next. Then only
        # box 5 is left, which no chip covers.
        assert greedy_chip_cover(covers).tolist() == [[1, 3, -1, -1, -1]]
        assert greedy_chip_cover(covers, min_count=3).tolist() == [[1, -1, -1, -1, -1]]
        assert greedy_chip_cover(covers, min_count=4).tolist() == [[-1] * 5]

    def test_identical_chips_tie_break_to_lowest_index(self, device):
        row = torch.tensor([1, 0, 1, 1], dtype=torch.bool)
        covers = torch.stack([torch.zeros(4, dtype=torch.bool), row, row, row]).expand(2, -1, -1)
        assert greedy_chip_cover(covers.to(device)).tolist() == [[1, -1, -1, -1]] * 2

    @pytest.mark.parametrize('shape', [(0, 4, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)])
    def test_empty_inputs(self, device, shape):
        out = greedy_chip_cover(torch.ones(shape, dtype=torch.bool, device=device))
        assert out.shape == shape[:2] and (out == -1).all()

    def test_nothing_covered_picks_nothing(self, device):
        out = greedy_chip_cover(torch.zeros(3, 8, 20, dtype=torch.bool, device=device))
        assert (out == -1).all()

    def test_non_contiguous_input(self, device, gen):
        covers = random_covers(gen, 30, 3, 50, 0.3).transpose(0, 1)
        assert not covers.is_contiguous()
        torch.testing.assert_close(greedy_chip_cover(covers.to(device)).cpu(), reference.greedy_chip_cover(covers))

    def test_opcheck(self, device, gen):
        covers = random_covers(gen, 3, 9, 20, 0.3).to(device)
        opcheck(torch.ops.sniper.greedy_chip_cover.default, (covers,), {'min_count': 2})

    def test_traces_under_torch_compile(self, device, gen):
        covers = random_covers(gen, 3, 9, 20, 0.3).to(device)
        compiled = torch.compile(lambda c: greedy_chip_cover(c) + 1, backend='aot_eager', fullgraph=True)
        torch.testing.assert_close(compiled(covers), reference.greedy_chip_cover(covers) + 1)
