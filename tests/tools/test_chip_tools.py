"""tools/browse_chips.py and tools/analyze_chips.py on the tiny config over generated data."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs' / 'sniper_faster_rcnn_r18_tiny_cpu.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    write_synthetic_coco(str(root / 'train'), 3, seed=4, image_size=(300, 200), size_range=(8, 150))
    return root


def run_tool(name, data_root, *args):
    return subprocess.run([sys.executable, str(ROOT / 'tools' / name), CONFIG, *args,
                           '--cfg-options', 'train_dataloader.dataset.cache_dir=None'],
                          capture_output=True, text=True, cwd=str(ROOT),
                          env=dict(os.environ, SNIPER_DATA_ROOT=f'{data_root}/'))


@pytest.mark.slow
def test_browse_chips_draws_a_panel_per_scale_with_the_chips(data_root, tmp_path):
    result = run_tool('browse_chips.py', data_root, '--out-dir', str(tmp_path), '--images', '0', '2')
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ('000000', '000002'):
        image = cv2.imread(str(tmp_path / f'{name}_chips.png'))
        # Three 300x200 panels under a 40 px title, 8 px apart.
        assert image.shape == (240, 3 * 300 + 2 * 8, 3)
        # These images have objects large enough for the coarsest scale, whose one positive chip is
        # the whole image: its green border.
        coarsest = image[40:, 2 * 308:]
        assert (np.abs(coarsest[:, 0].astype(int) - (60, 200, 60)).sum(axis=1) < 10).mean() > 0.9
    bad = run_tool('browse_chips.py', data_root, '--out-dir', str(tmp_path), '--images', '7')
    assert bad.returncode != 0 and '--images: 7 is not an image index' in bad.stderr


def test_analyze_chips_prints_the_statistics_and_a_histogram(data_root, tmp_path):
    result = run_tool('analyze_chips.py', data_root, '--epochs', '2', '--out', str(tmp_path / 'hist.png'))
    assert result.returncode == 0, result.stderr[-2000:]
    coco = json.loads((data_root / 'train' / 'annotations.json').read_text())
    for epoch in (0, 1):
        block = result.stdout.split(f'epoch {epoch}:')[1]
        images, chips = map(int, re.search(r'(\d+) images, (\d+) chips', block).groups())
        assert images == len(coco['images']) and chips > 0
        assert 'coverage: 1.0000' in block and 'no negatives' in block
    assert cv2.imread(str(tmp_path / 'hist.png')) is not None
