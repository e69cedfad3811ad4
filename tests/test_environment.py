"""The environment works for mmdet-sniper, whatever versions of torch and the OpenMMLab packages it holds
(tools/setup_env.sh checks the dev environment's pinned versions), and the package needs no more than
it declares."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from packaging.requirements import Requirement

import mmdet_sniper
from mmdet_sniper import ops
from mmdet_sniper.compat import stdlib_module_names

ROOT = Path(__file__).resolve().parents[1]


def test_mmcv_compiled_ops_run():
    from mmcv.ops import nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_sniper_ops_are_registered_for_cpu():
    for op in ops.__all__:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f'sniper::{op}', 'CPU')


def test_ops_and_chips_need_only_the_runtime_requirements(tmp_path):
    """With mmcv, mmengine and mmdet hidden, ``mmdet_sniper.ops`` and ``mmdet_sniper.chips`` import and
    run, and load no module beyond the standard library and requirements/runtime.txt's packages."""
    lines = (line.split('#')[0].strip() for line in (ROOT / 'requirements' / 'runtime.txt').read_text().splitlines())
    runtime = sorted(Requirement(line).name for line in lines if line)
    assert runtime == ['numpy', 'torch']  # their import names are their package names
    script = textwrap.dedent(f'''
        import json
        import sys
        for name in ('mmcv', 'mmdet', 'mmengine'):
            sys.modules[name] = None  # as if not installed: importing it raises ImportError
        for name in {runtime!r}:
            __import__(name)
        def loaded():
            return {{name.partition('.')[0] for name in sys.modules}} - set({sorted(stdlib_module_names())!r})
        before = loaded()
        import torch
        from mmdet_sniper import chips, ops
        chip, box = torch.tensor([[[0., 0., 10., 10.]]]), torch.tensor([[[0., 0., 5., 20.]]])
        print(json.dumps(dict(iof=ops.chip_coverage(chip, box).item(), new=sorted(loaded() - before))))
    ''')
    # The mmdet_sniper this test imports, a checkout's or an installed one, and no other.
    env = dict(os.environ, PYTHONPATH=str(Path(mmdet_sniper.__file__).parents[1]))
    result = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dict(iof=0.5, new=['mmdet_sniper'])


def test_an_mmcv_without_its_compiled_ops_is_refused_by_name(tmp_path):
    script = textwrap.dedent('''
        import sys
        sys.modules['mmcv._ext'] = None  # as in mmcv-lite or a build without MMCV_WITH_OPS=1
        import mmdet_sniper
    ''')
    env = dict(os.environ, PYTHONPATH=str(Path(mmdet_sniper.__file__).parents[1]))
    result = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'mmdet-sniper needs mmcv with its compiled ops' in result.stderr and 'MMCV_WITH_OPS=1' in result.stderr


def test_setup_refuses_a_torch_older_than_2_0_by_name(tmp_path):
    fake = tmp_path / 'torch'
    fake.mkdir()
    (fake / '__init__.py').write_text("__version__ = '1.13.1+cu117'\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, 'setup.py', '--name'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'mmdet-sniper needs torch >= 2.0, found torch 1.13.1+cu117' in result.stderr


def test_setup_without_torch_writes_metadata_and_refuses_to_compile_by_name(tmp_path):
    def setup(*args):
        script = (f'import runpy, sys; sys.modules["torch"] = None; sys.argv = ["setup.py", *{list(args)!r}]; '
                  'runpy.run_path("setup.py", run_name="__main__")')
        return subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True)

    assert setup('--name').stdout.strip() == 'mmdet-sniper'
    result = setup('build_ext', '--build-temp', str(tmp_path / 'temp'), '--build-lib', str(tmp_path / 'lib'))
    assert result.returncode != 0
    assert 'compiles its ops against the installed torch: install torch first' in result.stderr
