"""The package as a user without a clone gets it: the sdist builds, its wheel installs into a new
virtual environment, and from a folder outside the repository a config that inherits SNIPER's by its
``mmdet_sniper::`` name trains through the ``mmdet-sniper`` command; the logged ETA ends at zero."""
import os
import re
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.wheel]

ROOT = Path(__file__).resolve().parents[1]
# Strides drawn from a wide range and one chip per batch: on the test's data the three epochs differ in
# length, which only ChipEpochTrainLoop counts (mmengine's loop takes three times the first epoch's).
USER_CONFIG = """
_base_ = 'mmdet_sniper::sniper/sniper_faster_rcnn_r18_tiny_cpu.py'
train_dataloader = dict(batch_size=1, dataset=dict(chip_stride=(16, 64)))
train_cfg = dict(max_epochs=3, val_interval=3)
default_hooks = dict(logger=dict(interval=1))
"""
ITERATION = re.compile(r'Epoch\(train\) +\[(\d+)\]\[ *(\d+)/(\d+)\].*?eta: (-?\d+ days?, [\d:]+|[\d:]+)')


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f'{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}'
    return result


def eta_seconds(text):
    """``datetime.timedelta``'s str back to seconds: ``-1 day, 23:57:29`` is -151."""
    days, _, clock = text.replace(' days, ', ' day, ').rpartition(' day, ')
    hours, minutes, seconds = (int(part) for part in clock.split(':'))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def test_eta_seconds_reads_negative_durations():
    assert eta_seconds('-1 day, 23:57:29') == -151
    assert eta_seconds('0:00:00') == 0
    assert eta_seconds('2 days, 1:00:05') == 2 * 86400 + 3605


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel built from the sdist that ``python -m build --sdist`` makes of this checkout."""
    out = tmp_path_factory.mktemp('dist')
    run([sys.executable, '-m', 'build', '--sdist', '--outdir', str(out), str(ROOT)])
    sdist, = out.glob('mmdet_sniper-*.tar.gz')
    run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '--wheel-dir', str(out),
         str(sdist)], env=dict(os.environ, MAX_JOBS='2'))
    built, = out.glob('mmdet_sniper-*.whl')
    return built


@pytest.fixture(scope='module')
def user_env(wheel, tmp_path_factory):
    """A new virtual environment with the wheel installed. torch, mmcv, mmengine and mmdet are this
    environment's, seen through a .pth file (building mmcv again would take minutes), and so are pip and
    setuptools; this checkout's
    own mmdet_sniper is not: an editable install is found by an import hook that a .pth path does not run."""
    venv = tmp_path_factory.mktemp('user_venv')
    # Without a pip of its own, whose setuptools would hide the one torch requires.
    run([sys.executable, '-m', 'venv', '--without-pip', str(venv)])
    python = venv / 'bin' / 'python'
    purelib = run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).stdout.strip()
    ours = {sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib'], *site.getsitepackages()}
    Path(purelib, 'test_environment_packages.pth').write_text('\n'.join(sorted(ours)) + '\n')
    # --ignore-installed: pip sees this environment's mmdet-sniper too, and must leave it alone.
    run([str(python), '-m', 'pip', 'install', '--no-index', '--no-deps', '--ignore-installed', str(wheel)])
    return venv


def test_installed_package_trains_from_a_config_outside_the_repository(user_env, tmp_path):
    bin_dir = user_env / 'bin'
    env = {key: value for key, value in os.environ.items() if key not in ('PYTHONPATH', 'SNIPER_DATA_ROOT')}
    env['PATH'] = f'{bin_dir}{os.pathsep}{env["PATH"]}'
    where = run([str(bin_dir / 'python'), '-c', 'import mmdet_sniper; print(mmdet_sniper.__file__)'],
                cwd=tmp_path, env=env).stdout.strip()
    assert where.startswith(str(user_env)), where
    assert run(['mmdet-sniper', 'configs'], cwd=tmp_path, env=env).stdout.strip().startswith(str(user_env))

    run(['mmdet-sniper', 'make_synthetic_data', 'data', '--train', '2', '--val', '1'], cwd=tmp_path, env=env)
    (tmp_path / 'my_sniper.py').write_text(USER_CONFIG)
    result = run(['mmdet-sniper', 'train', 'my_sniper.py', '--work-dir', 'work', '--seed', '0'], cwd=tmp_path,
                 env=dict(env, SNIPER_DATA_ROOT='data/'))
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert 'Failed to search registry' not in log and 'Failed to import' not in log
    iterations = [(int(epoch), int(i), int(n), eta_seconds(eta)) for epoch, i, n, eta in ITERATION.findall(log)]
    assert [epoch for epoch, *_ in iterations][-1] == 3, result.stdout[-2000:]
    epoch_lengths = {epoch: n for epoch, _, n, _ in iterations}
    assert sum(epoch_lengths.values()) == len(iterations)  # every iteration logged
    assert len(set(epoch_lengths.values())) > 1, epoch_lengths
    assert all(eta >= 0 for *_, eta in iterations), [it for it in iterations if it[3] < 0]
    assert iterations[-1][3] == 0
    assert (tmp_path / 'work' / 'epoch_3.pth').is_file()
