import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))
import configure_sniper  # noqa: E402


def split_of(image_sizes, sizes_per_image, rng):
    """A Split of square boxes of the given sizes placed at random inside their images."""
    boxes = []
    for (w, h), sizes in zip(image_sizes, sizes_per_image):
        x = rng.uniform(0, w - sizes)
        y = rng.uniform(0, h - sizes)
        boxes.append(np.stack([x, y, x + sizes, y + sizes], axis=1).astype(np.float32))
    return configure_sniper.Split(ann_file='mine.json', img_dir='images', classes=('thing',),
                                  image_sizes=np.array(image_sizes, np.int64), boxes=boxes,
                                  crowd=[np.zeros(len(b), bool) for b in boxes],
                                  max_objects=max(len(b) for b in boxes))


def in_some_range(size, ranges):
    for lo, hi in ranges:
        if (lo < 0 or size >= lo) and (hi < 0 or size < hi):
            return True
    return False


@pytest.mark.parametrize('cpu', [False, True])
def test_a_coco_like_dataset_gets_the_authors_kind_of_pyramid_and_every_size_a_range(rng, cpu):
    image_sizes = [(640, 480)] * 50
    sizes = [np.exp(rng.uniform(np.log(8), np.log(400), int(rng.integers(1, 12)))) for _ in image_sizes]
    proposal = configure_sniper.propose(split_of(image_sizes, sizes, rng), cpu=cpu)
    chip = 256 if cpu else 512
    assert proposal.chip_size == chip and proposal.scales[-1] == chip
    fine, coarse = proposal.scales[0], chip / 640
    # The finest scale brings the smallest tenth to 32 px; at most 4x.
    p10 = np.percentile(np.concatenate(sizes), 10)
    assert fine == pytest.approx(min(max(round(32 / p10, 1), 1), 4))
    assert len(proposal.scales) == 3 and fine > proposal.scales[1] > coarse
    # Each scale trains chip/10 .. chip/2 px in its chips; the ends are open.
    lo_band, hi_band = chip / 10, chip / 2
    factors = proposal.scales[:-1] + [coarse]
    for i, ((lo, hi), f) in enumerate(zip(proposal.valid_ranges, factors)):
        assert lo == (-1 if i == 0 else round(lo_band / f))
        assert hi == (-1 if i == len(factors) - 1 else round(hi_band / f))
    for size in np.geomspace(0.5, 5000, 400):
        assert in_some_range(size, proposal.valid_ranges), size
    # The test ranges widen the training ones.
    for (lo, hi), (tlo, thi) in zip(proposal.valid_ranges, proposal.test_ranges):
        assert (tlo <= lo or lo < 0) and (thi >= hi or hi < 0)
    assert proposal.chip_stride == (chip * 7 // 64, chip * 15 // 128)


def test_small_images_get_small_chips_and_close_scales_no_middle_one(rng):
    image_sizes = [(400, 300)] * 10
    sizes = [rng.uniform(40, 120, 5) for _ in image_sizes]
    proposal = configure_sniper.propose(split_of(image_sizes, sizes, rng))
    assert proposal.chip_size == 256
    # A tenth of the boxes near 45 px: no upsampling, and 1x and the whole image (x0.64) are close.
    assert proposal.scales == [1.0, 256] and proposal.valid_ranges[0][0] == -1
    assert any('no middle scale' in reason for reason in proposal.reasons)


def test_schedule_reaches_the_minimum_iterations_and_scales_the_lr():
    plan = configure_sniper.schedule(chips_per_epoch=100, num_images=20, chips_per_gpu=4, gpus=2, base_lr=0.12,
                                     base_batch=128, min_iters=1000)
    assert plan.batch == 8 and plan.iters_per_epoch == 18  # (100 + 2 * 20) / 8, rounded up
    assert plan.epochs == 56 and plan.epochs * plan.iters_per_epoch >= 1000
    assert plan.milestone == 44 and plan.warmup == 100 and plan.lr == pytest.approx(0.12 * 8 / 128)
    big = configure_sniper.schedule(chips_per_epoch=500_000, num_images=118_000, chips_per_gpu=16, gpus=8,
                                    base_lr=0.12, base_batch=128, min_iters=1000)
    assert big.epochs == 14 and big.milestone == 11 and big.warmup == 1000 and big.lr == 0.12


def test_bad_annotation_files_are_named(tmp_path):
    empty = tmp_path / 'empty.json'
    empty.write_text('')
    with pytest.raises(ValueError, match='empty.json is not valid JSON'):
        configure_sniper.read_split(str(empty), None)
    no_images = tmp_path / 'none.json'
    no_images.write_text(json.dumps(dict(images=[], annotations=[], categories=[])))
    with pytest.raises(ValueError, match='none.json lists no images'):
        configure_sniper.read_split(str(no_images), None)
    partial = tmp_path / 'partial.json'
    partial.write_text(json.dumps(dict(images=[])))
    with pytest.raises(ValueError, match="has no 'annotations'"):
        configure_sniper.read_split(str(partial), None)
    boxless = tmp_path / 'boxless.json'
    boxless.write_text(json.dumps(dict(images=[dict(id=1, width=10, height=10, file_name='a.jpg')], annotations=[],
                                       categories=[dict(id=1, name='a')])))
    with pytest.raises(ValueError, match='boxless.json holds no box'):
        configure_sniper.propose(configure_sniper.read_split(str(boxless), None))


@pytest.mark.slow
def test_the_written_configs_of_a_new_dataset_train(tmp_path):
    # Small objects (6 to 40 px) on images larger than a chip: a dataset the project has not seen.
    for split, seed, count in (('train', 0, 8), ('val', 1, 2)):
        write_synthetic_coco(str(tmp_path / 'mine' / split), count, seed=seed, image_size=((600, 900), (500, 700)),
                             objects_per_image=(5, 15), size_range=(6, 40))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, 'tools/configure_sniper.py', str(tmp_path / 'mine/train/annotations.json'), '--val',
         str(tmp_path / 'mine/val/annotations.json'), '--cpu', '--write-configs', str(tmp_path / 'configs'),
         '--out-dir', str(tmp_path / 'out')], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'finest scale 4x' in result.stdout and 'boxes no chip holds: 0' in result.stdout
    assert (tmp_path / 'out' / 'object_sizes.png').stat().st_size > 0
    for name in ('sniper_rpn_mine.py', 'sniper_faster_rcnn_mine.py'):
        cfg = Config.fromfile(str(tmp_path / 'configs' / name))
        assert cfg.train_cfg.type == 'ChipEpochTrainLoop'
        assert cfg.train_dataloader.dataset.dataset.ann_file == str(tmp_path / 'mine/train/annotations.json')
        assert cfg.val_evaluator.ann_file == str(tmp_path / 'mine/val/annotations.json')
        if 'faster_rcnn' in name:
            assert cfg.model.roi_head.bbox_head.num_classes == 3
            assert cfg.tta_pipeline[-1].type == 'SniperTestViews'
        else:
            assert len(cfg.proposal_scales) == len(cfg.train_dataloader.dataset.scales)
        work_dir = tmp_path / name
        train = subprocess.run(
            [sys.executable, 'tools/train.py', str(tmp_path / 'configs' / name), '--work-dir', str(work_dir),
             '--cfg-options', 'train_cfg.max_epochs=1', 'model.backbone.init_cfg=None',
             f'train_dataloader.dataset.cache_dir={tmp_path / "cache"}'],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
        assert (work_dir / 'epoch_1.pth').exists()
