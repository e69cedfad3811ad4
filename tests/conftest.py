import random

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A numpy generator with a fresh seed each run; the seed is printed, so a failure can be replayed."""
    seed = random.SystemRandom().randrange(2**31)
    print(f'random seed: {seed}')
    return np.random.default_rng(seed)
