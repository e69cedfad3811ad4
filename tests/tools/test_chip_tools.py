"""tools/browse_chips.py and tools/analyze_chips.py on the tiny config over generated data."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmdet.utils import register_all_modules

from mmdet_sniper.datasets import SniperDataset
from mmdet_sniper.testing.synthetic_coco import CLASSES, write_synthetic_coco

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs' / 'sniper_faster_rcnn_r18_tiny_cpu.py')


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    out = tmp_path / 'not' / 'there' / 'hist.png'
    result = run_tool('analyze_chips.py', data_root, '--epochs', '2', '--out', str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    coco = json.loads((data_root / 'train' / 'annotations.json').read_text())
    for epoch in (0, 1):
        block = result.stdout.split(f'epoch {epoch}:')[1]
        images, chips = map(int, re.search(r'(\d+) images, (\d+) chips', block).groups())
        assert images == len(coco['images']) and chips > 0
        assert 'coverage: 1.0000' in block and 'no negatives' in block
    assert 'warning' not in result.stdout
    assert cv2.imread(str(out)) is not None


def test_analyze_chips_names_a_scale_whose_range_holds_no_box_and_that_gets_no_chips(data_root):
    analyze_chips = load_tool('analyze_chips')
    register_all_modules()
    # The boxes are at most 150 px (sqrt(w * h)); the middle scale's range lies above them all.
    dataset = SniperDataset(dict(type='CocoDataset', data_root=str(data_root / 'train'), ann_file='annotations.json',
                                 data_prefix=dict(img='images/'), metainfo=dict(classes=CLASSES), pipeline=[]),
                            scales=(2.0, 1.0, 256), valid_ranges=((-1, 48), (200, 300), (80, -1)), chip_size=256,
                            chip_stride=(28, 32), cache_dir=None)
    coco = json.loads((data_root / 'train' / 'annotations.json').read_text())
    sizes = np.array([np.sqrt(a['bbox'][2] * a['bbox'][3]) for a in coco['annotations'] if not a['iscrowd']])
    # The other two scales hold boxes, so only the middle one is named.
    assert (sizes < 48).any() and (sizes >= 80).any() and not ((sizes >= 200) & (sizes < 300)).any()
    assert analyze_chips.empty_range_warnings(dataset) == [
        f'warning: scale 1 (x1.0, valid range [200, 300)) holds none of the {len(sizes)} ground-truth boxes '
        f'(sqrt(w * h), sizes {sizes.min():.1f} to {sizes.max():.1f} px)']
    table = dataset.chips.table(3)
    assert set(table.scale_index.tolist()) == {0, 2}
    assert analyze_chips.empty_scale_warnings(dataset, table, 3) == [
        'warning: scale 1 (x1.0, valid range [200, 300)) gets no chips in epoch 3']
    assert analyze_chips.describe_scale(dataset.pyramid, 2) == 'long side 256, valid range [80, inf)'


def test_analyze_chips_fails_on_an_out_folder_it_cannot_create_before_making_chips(tmp_path, monkeypatch):
    analyze_chips = load_tool('analyze_chips')
    (tmp_path / 'file').write_text('')
    # No such config: reaching the dataset would fail differently.
    monkeypatch.setattr(sys, 'argv', ['analyze_chips.py', str(tmp_path / 'missing.py'),
                                      '--out', str(tmp_path / 'file' / 'hist.png')])
    with pytest.raises(SystemExit, match='--out: cannot create the folder of .*file/hist.png'):
        analyze_chips.main()
