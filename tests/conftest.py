import os
import random

import numpy as np
import pytest


def pytest_configure(config):
    """Under pytest-xdist each worker gets its share of the cores, for torch and for the processes a test
    starts: torch's default of one thread a core in every worker oversubscribes them, and its threads then
    slow down many times over (the R50 COCO test took 595 s beside another worker, 240 s alone)."""
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers:
        import torch
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ.setdefault('OMP_NUM_THREADS', str(threads))


@pytest.fixture
def rng():
    """A numpy generator with a fresh seed each run; the seed is printed, so a failure can be replayed."""
    seed = random.SystemRandom().randrange(2**31)
    print(f'random seed: {seed}')
    return np.random.default_rng(seed)
