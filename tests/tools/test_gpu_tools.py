"""The GPU run's tools, on the CPU: the wheelhouse covers what mmcv, mmengine and mmdet need on the
GPU image, and tools/benchmark_gpu.py reads its figures right from mmengine's logged scalars."""
import importlib.metadata
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))
import benchmark_gpu  # noqa: E402

# mmengine and mmcv ask for opencv-python; the image's opencv-python-headless gives the same cv2.
SAME_MODULE = {'opencv-python': 'opencv-python-headless'}


def requirement_names(name: str) -> set:
    """The package names of ``requirements/<name>``."""
    lines = (ROOT / 'requirements' / name).read_text().splitlines()
    return {canonicalize_name(Requirement(line).name) for line in lines if line.strip() and not line.startswith('#')}


def installed_version(name: str):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_the_wheelhouse_and_the_gpu_image_hold_everything_mmcv_mmengine_and_mmdet_require():
    # The requirements are read from the installed packages' metadata: only the versions the wheelhouse
    # carries tell what the GPU machine needs (the dev environment's; the other CI legs hold others).
    # mmcv travels as the sdist of the dev environment's pin.
    pinned = [line for name in ('gpu_wheels.txt', '../requirements.txt')
              for line in (ROOT / 'requirements' / name).read_text().splitlines() if '==' in line]
    carried = {name: version for name, version in (line.split('==') for line in pinned)
               if name in ('mmcv', 'mmengine', 'mmdet')}
    here = {name: installed_version(name) for name in carried}
    if here != carried:
        pytest.skip(f'this environment holds {here}, the GPU machine gets {carried}')
    image, wheels = requirement_names('gpu_image.txt'), requirement_names('gpu_wheels.txt')
    assert image and wheels and not image & wheels
    # Markers as on the GPU machine: CPython 3.12 on Linux.
    environment = dict(python_version='3.12', python_full_version='3.12.3', sys_platform='linux',
                       platform_system='Linux', platform_machine='x86_64', implementation_name='cpython',
                       platform_python_implementation='CPython', os_name='posix', extra='')
    missing, seen, todo = set(), set(), ['mmcv', 'mmengine', 'mmdet']
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        if name in image:
            continue  # the image satisfies its own packages' needs
        if name not in wheels and name != 'mmcv':  # mmcv travels as its source distribution
            missing.add(name)
            continue
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(SAME_MODULE.get(requirement.name, requirement.name))
    assert not missing, f'neither in the wheelhouse nor on the GPU image: {sorted(missing)}'


def write_scalars(work_dir: Path, logs: list) -> None:
    path = work_dir / '20261126_000000' / 'vis_data'
    path.mkdir(parents=True)
    (path / 'scalars.json').write_text('\n'.join(json.dumps(log) for log in logs) + '\n')


def log(step, time, data_time, loss=1.0, **more):
    return dict(lr=0.01, data_time=data_time, loss=loss, loss_cls=loss / 2, time=time, iter=step, step=step, **more)


def test_training_figures_leave_out_the_first_window_and_read_memory_and_losses(tmp_path):
    write_scalars(tmp_path, [log(10, 9.0, 8.0, memory=3000), log(20, 0.5, 0.1, memory=5120),
                             log(30, 0.3, 0.0, memory=4096), dict(coco_metric=0.1, step=30)])
    figures = benchmark_gpu.training_figures(str(tmp_path), items_per_iter=16)
    assert figures['iterations'] == 30
    assert figures['step_s'] == pytest.approx(0.4)
    assert figures['items_per_s'] == pytest.approx(16 / 0.4)
    assert figures['data_wait'] == pytest.approx(0.05 / 0.4)
    assert figures['peak_memory_mb'] == 5120
    assert figures['losses_finite'] is True


def test_training_figures_flag_a_non_finite_loss_and_a_cpu_run_has_no_memory(tmp_path):
    write_scalars(tmp_path, [log(10, 1.0, 0.5), dict(log(20, 1.0, 0.5), loss_cls=math.nan)])
    figures = benchmark_gpu.training_figures(str(tmp_path), items_per_iter=2)
    assert figures['losses_finite'] is False
    assert figures['peak_memory_mb'] is None
    # One logged window only: it is all there is to time.
    write_scalars(tmp_path / 'one', [log(4, 2.0, 1.0)])
    assert benchmark_gpu.training_figures(str(tmp_path / 'one'), items_per_iter=2)['items_per_s'] == pytest.approx(1.0)


@pytest.mark.parametrize('script', ['gpu_wheelhouse.sh', 'gpu_setup.sh', 'gpu_check.sh', 'gpu_rehearsal.sh',
                                    'cuda_toolkit_env.sh'])
def test_the_gpu_scripts_parse(script):
    result = subprocess.run(['bash', '-n', str(ROOT / 'tools' / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_table_gives_memory_in_gib_and_each_run_its_unit():
    figures = dict(iterations=300, items_per_s=80.0, step_s=0.2, data_wait=0.125, peak_memory_mb=5120,
                   losses_finite=True)
    results = dict(device='GPU', amp=True, batch=16, full_batch=2, train_images=200, val_images=50,
                   chips_per_image=4.0, sniper_train=figures, full_image_train=dict(figures, peak_memory_mb=None),
                   torchrun_train=figures, dist_backend='NCCL', sniper_s_per_image=0.05, full_s_per_image=0.1,
                   cost_ratio=0.5, tests={'SNIPER test': dict(images_per_s=3.0, AP=0.25, AP_s=0.125)})
    text = benchmark_gpu.table(results)
    assert '| SNIPER chips | 300 | 16 chips | 80.00 chips/s | 0.200 | 12.5% | 5.0 | True |' in text
    assert '| 3-scale whole images | 300 | 2 images | 80.00 images/s | 0.200 | 12.5% | - | True |' in text
    assert 'SNIPER costs 0.50x of 3-scale training' in text
    assert '| SNIPER test | 3.00 | 0.250 | 0.125 |' in text
