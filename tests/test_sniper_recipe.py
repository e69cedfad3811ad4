"""The whole SNIPER recipe end to end with the tiny CPU configs on generated data: the RPN on
positive chips, its proposals, the detector on positive and negative chips, the multi-scale test
evaluated by pycocotools; then a rerun that resumes by skipping the finished steps."""
import glob
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NO_VALIDATION = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


def run_pipeline(data_root, work_dir, cache_dir):
    env = dict(os.environ, SNIPER_DATA_ROOT=f'{data_root}/', PYTHON=sys.executable, OMP_NUM_THREADS='1',
               RPN_ARGS='--cfg-options train_cfg.max_epochs=3',
               DETECTOR_ARGS='--cfg-options train_cfg.max_epochs=10')
    return subprocess.run(
        [str(ROOT / 'tools' / 'sniper_pipeline.sh'), str(ROOT / 'configs' / 'sniper_rpn_r18_tiny_cpu.py'),
         str(ROOT / 'configs' / 'sniper_faster_rcnn_r18_tiny_cpu.py'), str(work_dir),
         '--cfg-options', f'train_dataloader.dataset.cache_dir={cache_dir}', 'randomness.seed=0', *NO_VALIDATION],
        capture_output=True, text=True, env=env, timeout=900, cwd=str(ROOT))


def guessing_ap50(ann_file, per_image=100):
    """AP50 of random boxes of the dataset's sizes, classes and scores: what chance scores."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    rng = np.random.default_rng(0)
    gt = COCO(ann_file)
    guesses = []
    for image in gt.dataset['images']:
        size = np.exp(rng.uniform(np.log(8), np.log(150), per_image))
        x, y = rng.uniform(0, image['width'] - size), rng.uniform(0, image['height'] - size)
        guesses += [dict(image_id=image['id'], category_id=int(rng.integers(1, 4)), score=float(rng.uniform()),
                         bbox=[float(x[i]), float(y[i]), float(size[i]), float(size[i])]) for i in range(per_image)]
    evaluation = COCOeval(gt, gt.loadRes(guesses), 'bbox')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[1])


def test_the_whole_recipe_trains_mines_negatives_and_evaluates_above_chance(tmp_path):
    data_root = tmp_path / 'data'
    for split, count, seed in (('train', 16, 0), ('val', 6, 1)):
        write_synthetic_coco(str(data_root / split), count, seed=seed, image_size=((200, 400), (150, 300)),
                             size_range=(8, 150))
    result = run_pipeline(data_root, tmp_path / 'work', tmp_path / 'cache')
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    # Proposals: every training image, in original pixels, 300 per scale at most, best first.
    coco = json.loads((data_root / 'train' / 'annotations.json').read_text())
    proposals = pickle.loads((tmp_path / 'work' / 'proposals.pkl').read_bytes())
    assert set(proposals) == {image['id'] for image in coco['images']}
    for image in coco['images']:
        boxes = proposals[image['id']]
        assert boxes.dtype == np.float32 and boxes.shape[1] == 5 and 0 < len(boxes) <= 900
        assert (boxes[:, :2] >= -1e-3).all() and (boxes[:, 2] <= image['width'] + 1e-3).all()
        assert (boxes[:, 3] <= image['height'] + 1e-3).all() and (np.diff(boxes[:, 4]) <= 0).all()

    # Stage 2 trained on negative chips mined from them.
    log = Path(glob.glob(str(tmp_path / 'work' / 'detector' / '*' / '*.log'))[0]).read_text()
    negatives = [int(n) for n in re.findall(r'chips \(\d+ positive, (\d+) negative\)', log)]
    assert negatives and min(negatives) > 0

    # The test: pycocotools' AP of the multi-scale test, well above that of guessed boxes.
    metrics = glob.glob(str(tmp_path / 'work' / 'detector' / 'test' / '*' / '*.json'))
    scores = json.loads(Path(metrics[0]).read_text())
    chance = guessing_ap50(str(data_root / 'val' / 'annotations.json'))
    assert scores['coco/bbox_mAP_50'] > max(5 * chance, 0.03), (scores, chance)

    # A rerun skips what is done and only evaluates again.
    rerun = run_pipeline(data_root, tmp_path / 'work', tmp_path / 'cache')
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout.count('skipping') == 3
