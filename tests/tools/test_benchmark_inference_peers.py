import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))
import benchmark_inference_peers as peers  # noqa: E402  (a tool, beside its siblings in tools/)

TREES = str(ROOT / 'configs' / 'sniper_faster_rcnn_mnv2_trees_cpu.py')


class TestParseTest:

    @pytest.mark.parametrize('name, expected', [
        ('single', dict(kind='single')),
        ('sniper_flip', dict(kind='sniper', flip=True, sliced=False)),
        ('sniper_sliced', dict(kind='sniper', flip=False, sliced=True)),
        ('sahi512', dict(kind='sahi', slice=512, zoom=1.0, full=False)),
        ('sahi256+full', dict(kind='sahi', slice=256, zoom=1.0, full=True)),
        ('sahi512@2x', dict(kind='sahi', slice=512, zoom=2.0, full=False)),
        ('sahi384@1.5x+full', dict(kind='sahi', slice=384, zoom=1.5, full=True))])
    def test_names(self, name, expected):
        assert peers.parse_test(name) == dict(name=name, **expected)

    @pytest.mark.parametrize('name', ['sahi', 'sahi512+full@2x', 'sahi0', 'sahi512@0x', 'snipper', 'sahi-512'])
    def test_unknown_names_are_errors_naming_the_option(self, name):
        with pytest.raises(ValueError, match='--tests'):
            peers.parse_test(name)

    def test_single_always_runs_first_and_once(self):
        args = peers.parse_args(['c.py', '--checkpoints', 'a.pth', '--tests', 'sahi512', 'single', 'sahi512'])
        assert [spec['name'] for spec in args.specs] == ['single', 'sahi512']


class TestEnlarge:

    def test_2x_doubles_both_sides_and_reports_exact_factors(self):
        image = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
        big, scale = peers.enlarge(image, 2.0)
        assert big.shape == (6, 10, 3)
        assert scale == (2.0, 2.0)

    def test_factors_follow_the_rounded_size(self):
        big, scale = peers.enlarge(np.zeros((3, 5, 3), np.uint8), 1.5)
        # 5 * 1.5 = 7.5 and 3 * 1.5 = 4.5 round half to even: 8 and 4.
        assert big.shape == (4, 8, 3)
        assert scale == (8 / 5, 4 / 3)


def run(ms, ap=0.5, error=None):
    if error is not None:
        return dict(error=error, peak_mib=900.0)
    return dict(ms_per_image=ms, peak_mib=100.0 + ms, metrics={name: ap for name, _ in peers.METRICS})


class TestSummarise:

    def test_mean_and_sample_std_over_checkpoints(self):
        runs = dict(single=[run(100, 0.1), run(200, 0.2)], sahi512=[run(300, 0.2), run(500, 0.4)])
        single, sahi = peers.summarise(runs, ['single', 'sahi512'])
        assert single['n'] == 2 and single['cost'] == (1.0, 0.0)
        assert sahi['AP'][0] == pytest.approx(0.3)
        assert sahi['AP'][1] == pytest.approx(math.sqrt(((0.2 - 0.3)**2 + (0.4 - 0.3)**2) / 1))
        assert sahi['ms'][0] == pytest.approx(400) and sahi['ms'][1] == pytest.approx(math.sqrt(2 * 100**2))
        # cost per checkpoint: 3.0 and 2.5
        assert sahi['cost'][0] == pytest.approx(2.75) and sahi['cost'][1] == pytest.approx(math.sqrt(2 * 0.25**2))
        assert sahi['peak_mib'] == 600.0 and sahi['errors'] == []

    def test_a_failed_checkpoint_is_left_out_and_reported(self):
        runs = dict(single=[run(100), run(200)], sniper=[run(400), run(None, error='out of memory (RuntimeError)')])
        row = peers.summarise(runs, ['sniper'])[0]
        assert row['n'] == 1
        assert row['ms'] == (400, None) and row['cost'] == (4.0, None)
        assert row['errors'] == ['out of memory (RuntimeError)']
        assert row['peak_mib'] == 900.0

    def test_all_failed_gives_no_numbers(self):
        runs = dict(single=[run(100)], sniper=[run(None, error='out of memory (MemoryError)')])
        row = peers.summarise(runs, ['sniper'])[0]
        assert row['n'] == 0 and row['AP'] == (None, None) and row['cost'] == (None, None)

    def test_markdown_table(self):
        runs = dict(single=[run(100, 0.1), run(200, 0.2)], sniper=[run(400), run(None, error='out of memory (X)')])
        table = peers.markdown_table(peers.summarise(runs, ['single', 'sniper']), dict(single='single-scale'))
        lines = table.splitlines()
        assert lines[0] == '| test | n | AP | AP50 | AP75 | AP_small | AP_medium | ms/img | cost | peak MiB |'
        assert lines[2] == ('| single-scale | 2 | 0.150 ± 0.071 | 0.150 ± 0.071 | 0.150 ± 0.071 | 0.150 ± 0.071 | '
                            '0.150 ± 0.071 | 150 ± 71 | 1.0x ± 0.0 | 300 |')
        assert lines[3] == ('| sniper (failed: out of memory (X)) | 1 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 | 400 | '
                            '4.0x | 900 |')


def test_evaluate_scores_only_the_images_tested(tmp_path):
    from mmdet.utils import register_all_modules

    import mmdet_sniper  # noqa: F401  (registers MaxDetsCocoMetric)
    register_all_modules()
    boxes = {1: [10, 10, 40, 40], 2: [5, 5, 20, 30]}  # x, y, w, h: one medium, one small object
    coco = dict(images=[dict(id=i, file_name=f'{i}.png', width=100, height=100) for i in boxes],
                annotations=[dict(id=i, image_id=i, category_id=1, bbox=b, area=b[2] * b[3], iscrowd=0)
                             for i, b in boxes.items()],
                categories=[dict(id=1, name='tree')])
    ann_file = tmp_path / 'annotations.json'
    ann_file.write_text(json.dumps(coco))
    cfg = Config(dict(test_evaluator=dict(type='MaxDetsCocoMetric', max_dets=300, ann_file=str(ann_file))))
    sample = DetDataSample(metainfo=dict(img_id=1, ori_shape=(100, 100)))
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[10., 10., 50., 50.]]), scores=torch.tensor([0.9]),
                                         labels=torch.tensor([0]))
    metrics = peers.evaluate(cfg, dict(classes=('tree',)), [sample], [1])
    # Image 2, not tested, does not count as a missed object.
    assert metrics['AP'] == pytest.approx(1.0) and metrics['AP_medium'] == pytest.approx(1.0)
    assert metrics['AP_small'] == -1


class TestLoadConfig:

    def test_data_root_moves_the_dataset_and_the_evaluator(self):
        args = peers.parse_args([TREES, '--checkpoints', 'a.pth', '--data-root', '/x/mosaic/'])
        cfg = peers.load_config(args)
        assert cfg.test_dataloader.dataset.data_root == '/x/mosaic/'
        assert cfg.test_evaluator.ann_file == '/x/mosaic/annotations.json'

    def test_max_dets_raises_every_cap_and_the_views_in_proportion(self):
        cfg = peers.load_config(peers.parse_args([TREES, '--checkpoints', 'a.pth', '--max-dets', '3000']))
        assert cfg.model.test_cfg.rcnn.max_per_img == 3000
        assert cfg.test_evaluator.max_dets == 3000
        assert cfg.tta_model.tta_cfg.max_per_img == 3000
        # The config's 300 per image against 1000 per view (VIEW_TEST_CFG).
        assert cfg.tta_model.view_cfg == dict(score_thr=1e-3, nms=None, max_per_img=10000)

    def test_autofocus_is_skipped_for_a_sniper_config_and_sniper_runs(self):
        cfg = peers.load_config(peers.parse_args([TREES, '--checkpoints', 'a.pth']))
        assert 'SniperTestTimeAug' in peers.skip_reason(peers.parse_test('autofocus'), cfg)
        assert peers.skip_reason(peers.parse_test('sniper_flip'), cfg) is None
        flips = [t['flip'] for t in peers.pipeline_of(peers.parse_test('sniper_flip'), cfg) if 'flip' in t]
        assert flips == [True]


def test_out_of_memory_is_told_from_other_errors_and_names_the_allocation():
    # torch 2.13's message under an address-space limit.
    error = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                         'you tried to allocate 8841043968 bytes. Error code 12 (Cannot allocate memory)')
    assert peers.is_oom(error) and peers.oom_detail(error) == 'RuntimeError: 8.2 GiB'
    assert peers.is_oom(MemoryError()) and peers.oom_detail(MemoryError()) == 'MemoryError'
    assert not peers.is_oom(RuntimeError('The size of tensor a (3) must match the size of tensor b (4)'))


def test_a_test_process_that_dies_fails_its_runs_with_the_signal(monkeypatch):
    import subprocess
    calls = []

    def crash(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, -11)  # SIGSEGV, as a conv on a huge view ended one

    monkeypatch.setattr(subprocess, 'run', crash)
    checkpoints = ['a.pth', 'b.pth']
    runs = peers.run_isolated(peers.parse_test('sniper'), ['c.py', '--checkpoints', *checkpoints], checkpoints)
    assert runs == [dict(checkpoint=c, error='the test process died (signal SIGSEGV)') for c in ('a.pth', 'b.pth')]
    assert calls[0][-4:-1] == ['--tests', 'sniper', '--worker-json']


@pytest.mark.parametrize('name, chip_size', [('sniper_faster_rcnn_mnv2_trees_cpu.py', 256),
                                             ('autofocus_faster_rcnn_mnv2_trees_cpu.py', 256),
                                             ('sniper_faster_rcnn.py', 512)])
def test_the_sliced_rows_tile_at_the_configs_chip_size(name, chip_size):
    """An AutoFocus config's tta_model has no chip_size: its sliced row tiles at the training chips'."""
    cfg = Config.fromfile(str(ROOT / 'configs' / name))
    assert peers.sliced_chip_size(cfg) == chip_size == cfg.train_dataloader.dataset.chip_size
    assert 'chip_size' not in cfg.tta_model or cfg.tta_model.chip_size == chip_size
