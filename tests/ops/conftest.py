import random

import pytest
import torch

from mmdet_sniper.ops import chip_ops  # noqa: F401  (registers the ops and their fake kernels)

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason='needs a CUDA GPU'))]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture
def gen():
    """A generator with a fresh seed each run; the seed is printed, so a failure can be replayed."""
    seed = random.SystemRandom().randrange(2**31)
    print(f'random seed: {seed}')
    return torch.Generator().manual_seed(seed)
