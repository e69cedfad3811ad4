import random

import pytest
import torch

from mmdet_sniper.ops import chip_ops  # noqa: F401  (registers the ops and their fake kernels)

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason='needs a CUDA GPU'))]


@pytest.fixture(params=DEVICES)
def device(request):
    # With its index, as tensors report it: torch.device('cuda') != torch.device('cuda', 0).
    return torch.empty(0, device=request.param).device


@pytest.fixture
def gen():
    """A generator with a fresh seed each run; the seed is printed, so a failure can be replayed."""
    seed = random.SystemRandom().randrange(2**31)
    print(f'random seed: {seed}')
    return torch.Generator().manual_seed(seed)
