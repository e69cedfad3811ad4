"""The tools' choice of Python (tools/python_env.sh, tools/require_sniper.py): $PYTHON, else the
checkout's .venv, else python; and a clear message, not a traceback, from a Python without mmdet_sniper."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Stands in for a Python: logs how it was called; fails the import check as a Python without
# mmdet_sniper does when FAIL is set.
FAKE_PYTHON = '''#!/bin/sh
echo "$0 $*" >> "{log}"
if [ -n "{fail}" ] && [ "$1" = -c ]; then
    echo "Traceback (most recent call last):" >&2
    echo "ModuleNotFoundError: No module named 'mmdet_sniper'" >&2
    exit 1
fi
'''


def fake_python(path, log, fail=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PYTHON.format(log=log, fail='1' if fail else ''))
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path):
    """A copy of the shell tools in a folder of their own, with no .venv; a fake python first on PATH
    that lacks mmdet_sniper."""
    root = tmp_path / 'checkout'
    (root / 'tools').mkdir(parents=True)
    for name in ('python_env.sh', 'sniper_pipeline.sh', 'dist_launch.sh', 'dist_train.sh'):
        shutil.copy(ROOT / 'tools' / name, root / 'tools' / name)
    fake_python(tmp_path / 'bin' / 'python', tmp_path / 'path_python.log', fail=True)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env['PATH'] = f'{tmp_path / "bin"}:{env["PATH"]}'
    return root, env


def test_a_python_without_mmdet_sniper_gets_told_to_make_the_environment(checkout):
    root, env = checkout
    # dist_train.sh runs dist_launch.sh, which checks.
    for checker, command in (('sniper_pipeline.sh', ['sniper_pipeline.sh', 'rpn.py', 'det.py', 'work']),
                             ('dist_launch.sh', ['dist_train.sh', 'det.py', '2'])):
        result = subprocess.run([str(root / 'tools' / command[0]), *command[1:]], env=env, capture_output=True,
                                text=True)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"{checker}: python cannot import mmdet_sniper: ModuleNotFoundError: No module named 'mmdet_sniper'",
            f'Run `make env` in {root} (the tools then use its .venv by themselves), or set PYTHON to a',
            f'Python where mmdet-sniper is installed (pip install --no-build-isolation -e {root}).']
    assert not (root / 'work').exists()


def test_the_tools_use_the_checkouts_venv_unless_python_is_set(checkout, tmp_path):
    root, env = checkout
    venv_python = root / '.venv' / 'bin' / 'python'
    fake_python(venv_python, tmp_path / 'venv.log')
    result = subprocess.run([str(root / 'tools' / 'dist_train.sh'), 'det.py', '2', '--amp'], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    check, launch = (tmp_path / 'venv.log').read_text().splitlines()
    assert check == f'{venv_python} -c import mmdet_sniper.engine.launch'
    assert launch.startswith(f'{venv_python} -m torch.distributed.run ')
    assert launch.endswith(f'--nproc_per_node=2 --master_port=29500 {root}/tools/train.py det.py --amp '
                           '--launcher pytorch')
    assert not (tmp_path / 'path_python.log').exists()

    given = tmp_path / 'given' / 'python'
    fake_python(given, tmp_path / 'given.log')
    result = subprocess.run([str(root / 'tools' / 'dist_train.sh'), 'det.py', '2'], env=dict(env, PYTHON=str(given)),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in (tmp_path / 'given.log').read_text().splitlines()] == [str(given)] * 2
    assert len((tmp_path / 'venv.log').read_text().splitlines()) == 2


@pytest.mark.parametrize('tool', ['train.py', 'test.py', 'extract_proposals.py'])
def test_a_python_tool_run_without_mmdet_sniper_says_what_to_do(tool):
    # -S leaves out site-packages, where mmdet_sniper and mmdet are installed.
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run([sys.executable, '-S', str(ROOT / 'tools' / tool), '--help'], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{tool}: {sys.executable} cannot import mmdet_sniper: No module named 'mmdet_sniper'",
        f'Run `make env` in {ROOT} and use {ROOT}/.venv/bin/python, or install mmdet-sniper into this '
        f'Python (pip install --no-build-isolation -e {ROOT}).']
