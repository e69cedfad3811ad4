"""tools/extract_proposals.py under torchrun with two gloo processes: the ranks' shards come
together into one file that holds every training image's proposals of every scale once."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_sniper  # noqa: F401
from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs' / 'sniper_rpn_r18_tiny_cpu.py'


def test_two_processes_extract_every_images_proposals_once(tmp_path):
    write_synthetic_coco(str(tmp_path / 'data' / 'train'), 5, seed=0, image_size=((200, 400), (150, 300)),
                         size_range=(8, 150))
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(CONFIG)).model)  # untrained: proposals are proposals all the same
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), tmp_path / 'rpn.pth')
    env = dict(os.environ, SNIPER_DATA_ROOT=f'{tmp_path / "data"}/', PYTHON=sys.executable, PORT='29519',
               OMP_NUM_THREADS='1')
    out = tmp_path / 'proposals.pkl'
    result = subprocess.run(
        [str(ROOT / 'tools' / 'dist_extract_proposals.sh'), str(CONFIG), str(tmp_path / 'rpn.pth'), '2',
         '--out', str(out), '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', f'train_dataloader.dataset.cache_dir={tmp_path / "cache"}'],
        capture_output=True, text=True, env=env, timeout=600, cwd=str(ROOT))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'GPU number: 2' in result.stdout + result.stderr  # mmengine's name for the world size
    proposals = pickle.loads(out.read_bytes())
    coco = json.loads((tmp_path / 'data' / 'train' / 'annotations.json').read_text())
    assert set(proposals) == {image['id'] for image in coco['images']}
    for boxes in proposals.values():
        # Three scales of at most 300 each; a view counted twice would show as more than 600 from two.
        assert boxes.shape[1] == 5 and len(boxes) <= 900 and np.isfinite(boxes).all()
        rows = {tuple(row) for row in boxes.tolist()}
        assert len(rows) == len(boxes), 'a view was pooled twice'
