"""A two-process gloo training killed with SIGKILL within an epoch (torchrun and both workers, as a lost
node or a scheduler's kill leaves it) and restarted with --resume goes on with the next batch of chips
and ends with the iterations of an uninterrupted run."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist

from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs' / 'sniper_faster_rcnn_r18_tiny_cpu.py'
EPOCHS = 3
RUN_TIMEOUT_S = 300
TRAIN_LINE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\].*?\sloss: (\S+)')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip('torch.distributed with the gloo backend is not available')
    if not Path('/proc/self/stat').exists():
        pytest.skip('finding the workers that torchrun starts in sessions of their own needs /proc')
    root = tmp_path_factory.mktemp('synthetic')
    write_synthetic_coco(str(root / 'train'), 6, seed=0, image_size=((200, 400), (150, 300)), size_range=(8, 150))
    return root


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(data_root, work_dir, log_path, *args, options=()):
    """tools/dist_train.sh with 2 CPU processes, ``args`` and ``options`` for --cfg-options; at a lower
    priority than the test, which must see the checkpoint in time to kill the run within the epoch."""
    env = dict(os.environ, SNIPER_DATA_ROOT=f'{data_root}/', PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    command = ['nice', '-n', '10', str(ROOT / 'tools' / 'dist_train.sh'), str(CONFIG), '2',
               '--work-dir', str(work_dir), '--seed', '0', *args, '--cfg-options', f'train_cfg.max_epochs={EPOCHS}',
               'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
               f'train_dataloader.dataset.cache_dir={data_root / "chip_cache"}',
               'default_hooks.logger.interval=1', 'log_processor.window_size=1', *options]
    with open(log_path, 'w') as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                                start_new_session=True)


def descendants(pid):
    children = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def kill_all(proc):
    """SIGKILLs the launcher's process group and those of its descendants: torchrun starts each worker
    in a session of its own, so killing torchrun's group alone would leave the workers training."""
    pids = [proc.pid] + descendants(proc.pid)
    groups = []
    for pid in pids:
        try:
            groups.append(os.getpgid(pid))
        except ProcessLookupError:
            pass
    for group in dict.fromkeys(groups):
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)
    return pids


def alive(pid):
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def finish(proc, log_path):
    try:
        proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f'the training ran over {RUN_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}')
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    return log_path.read_text()


def train_lines(log):
    """``(epoch, iteration in the epoch, iterations of the epoch, loss)`` of every training line rank 0 logged."""
    return [(int(e), int(i), int(n), float(loss)) for e, i, n, loss in TRAIN_LINE.findall(log)]


def last_checkpoint(work_dir):
    path = work_dir / 'last_checkpoint'
    match = re.search(r'iter_(\d+)\.pth$', path.read_text().strip()) if path.exists() else None
    return int(match.group(1)) if match else None


def test_a_killed_two_process_run_resumes_with_the_next_chips_and_ends_with_the_iterations_of_an_uninterrupted_one(
        data_root, tmp_path):
    running = []
    try:
        running.append(launch(data_root, tmp_path / 'full', tmp_path / 'full.log'))
        full_log = finish(running[-1], tmp_path / 'full.log')
        assert 'Distributed training: True' in full_log and 'GPU number: 2' in full_log
        full = [line[:3] for line in train_lines(full_log)]
        lengths = {epoch: n for epoch, _, n in full}
        total = sum(lengths.values())
        assert sorted(lengths) == list(range(1, EPOCHS + 1)) and len(full) == total
        epoch_starts = np.cumsum([0] + [lengths[e] for e in sorted(lengths)]).tolist()
        # A checkpoint after the first batch of the second epoch, and every as many iterations after.
        interval = lengths[1] + 1
        assert lengths[2] > 1  # the first checkpoint falls within the second epoch

        work_dir, killed_path = tmp_path / 'killed', tmp_path / 'killed.log'
        checkpoints = ['default_hooks.checkpoint.by_epoch=False', f'default_hooks.checkpoint.interval={interval}']
        killed_proc = launch(data_root, work_dir, killed_path, options=checkpoints)
        running.append(killed_proc)
        # mmengine names a checkpoint in last_checkpoint once it is written. Kill once the run has
        # trained past it, so that the iterations after it are lost as a crash loses them.
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not (last_checkpoint(work_dir) is not None and len(train_lines(killed_path.read_text())) > interval):
            assert killed_proc.poll() is None, f'the run ended before the kill:\n{killed_path.read_text()[-3000:]}'
            assert time.monotonic() < deadline, f'no checkpoint within {RUN_TIMEOUT_S} s'
            time.sleep(0.05)
        pids = kill_all(killed_proc)
        assert len(pids) >= 3  # torchrun and its two workers
        assert killed_proc.returncode == -signal.SIGKILL
        for _ in range(600):
            if not any(alive(pid) for pid in pids):
                break
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids), 'a worker outlived the kill'
        killed = [line[:3] for line in train_lines(killed_path.read_text())]
        resume_from = last_checkpoint(work_dir)
        # The kill came within an epoch, after iterations that no checkpoint holds.
        assert resume_from is not None and resume_from % interval == 0 and resume_from < total
        assert resume_from not in epoch_starts and len(killed) > resume_from
        assert killed[:resume_from] == full[:resume_from]

        runs_before = set(work_dir.glob('2*'))
        resumed_path = tmp_path / 'resumed.log'
        running.append(launch(data_root, work_dir, resumed_path, '--resume', options=checkpoints))
        resumed_log = finish(running[-1], resumed_path)
        assert f'resumed epoch: {full[resume_from][0] - 1}, iter: {resume_from}' in resumed_log
        assert 'restarts from its beginning' not in resumed_log
        resumed_lines = train_lines(resumed_log)
        resumed = [line[:3] for line in resumed_lines]
        # The next batch of the same epoch, numbered on; then the uninterrupted run's iterations.
        epoch, first, _ = resumed[0]
        assert (epoch, first) == full[resume_from][:2] and first > 1
        assert killed[:resume_from] + resumed == full
        assert np.isfinite([line[3] for line in resumed_lines]).all()
        (resumed_dir,) = set(work_dir.glob('2*')) - runs_before
        # mmengine's own count of the run's iterations, in its scalars.
        scalars = (resumed_dir / 'vis_data' / 'scalars.json').read_text().splitlines()
        iters = [json.loads(line)['iter'] for line in scalars if '"loss"' in line]
        assert iters == list(range(resume_from + 1, total + 1))
        assert (work_dir / f'iter_{total}.pth').exists() and last_checkpoint(work_dir) == total
    finally:
        for proc in running:
            if proc.poll() is None:
                kill_all(proc)
