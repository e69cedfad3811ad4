import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmdet_sniper.chips import ChipTable

ROOT = Path(__file__).resolve().parents[2]


def write_coco(path, image_sizes, boxes_per_image):
    images = [dict(id=10 + i, width=w, height=h, file_name=f'{i}.jpg') for i, (w, h) in enumerate(image_sizes)]
    annotations = [dict(id=len(boxes_per_image) * 100 + i * 10 + j, image_id=10 + i, category_id=1, iscrowd=0,
                        bbox=[x1, y1, x2 - x1, y2 - y1])
                   for i, boxes in enumerate(boxes_per_image) for j, (x1, y1, x2, y2) in enumerate(boxes)]
    path.write_text(json.dumps(dict(images=images, annotations=annotations, categories=[dict(id=1, name='a')])))


def run_tool(*args):
    return subprocess.run([sys.executable, str(ROOT / 'tools/generate_chips.py'), *map(str, args)],
                          capture_output=True, text=True)


def test_writes_the_chip_table_of_a_coco_file(tmp_path):
    ann = tmp_path / 'ann.json'
    write_coco(ann, [(640, 480), (300, 200)], [[(10, 10, 30, 30), (100, 100, 400, 400), (700, 0, 720, 20)], []])
    proposals = tmp_path / 'proposals.pkl'
    rng = np.random.default_rng(0)
    xy = rng.uniform([450, 350], [520, 420], (40, 2))
    dense = np.concatenate([xy, xy + 15, np.ones((40, 1))], axis=1)  # 40 small proposals far from the ground truth
    proposals.write_bytes(pickle.dumps({10: dense, 11: np.zeros((0, 5))}))
    out = tmp_path / 'chips.npz'
    result = run_tool(ann, '--proposals', proposals, '--out', out, '--chip-stride', '56')
    assert result.returncode == 0, result.stderr
    table = ChipTable.load(str(out))
    assert table.num_images == 2 and table.stride == 56
    assert table.positive.sum() >= 2 and (~table.positive).sum() >= 1
    # The box outside the image is reported with its COCO ids.
    assert 'valid at no scale: 1' in result.stdout and 'image 10 annotation 202' in result.stdout


@pytest.mark.slow
def test_mismatched_proposals_and_empty_annotation_files_are_clear_errors(tmp_path):
    ann = tmp_path / 'ann.json'
    write_coco(ann, [(640, 480)], [[(10, 10, 30, 30)]])
    proposals = tmp_path / 'proposals.pkl'
    proposals.write_bytes(pickle.dumps({99: np.zeros((3, 5))}))
    result = run_tool(ann, '--proposals', proposals, '--out', tmp_path / 'x.npz')
    assert result.returncode != 0 and 'does not match the annotation file' in result.stderr
    assert '[10]' in result.stderr and '[99]' in result.stderr
    empty = tmp_path / 'empty.json'
    empty.write_text(json.dumps(dict(images=[], annotations=[])))
    result = run_tool(empty, '--out', tmp_path / 'y.npz')
    assert result.returncode != 0 and 'lists no images' in result.stderr
