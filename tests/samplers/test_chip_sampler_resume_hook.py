import math
import random
import shutil
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmdet_sniper.engine import ChipSamplerResumeHook
from mmdet_sniper.engine import chip_sampler_resume_hook
from mmdet_sniper.samplers import ChipAwareSampler


@pytest.fixture
def rng():
    """A numpy generator with a fresh seed each run; the seed is printed, so a failure can be replayed."""
    seed = random.SystemRandom().randrange(2**31)
    print(f'random seed: {seed}')
    return np.random.default_rng(seed)


@pytest.fixture
def warnings(monkeypatch):
    messages = []
    monkeypatch.setattr(chip_sampler_resume_hook, 'print_log',
                        lambda message, **kwargs: messages.append(message))
    return messages


class ToyChipDataset:
    """A SniperDataset stand-in: ``sizes[epoch]`` chips over a few images per epoch, keys
    ``'epoch:row'`` (a string, which mmengine's collate keeps as it is)."""

    metainfo = dict(classes=('thing',))

    def __init__(self, sizes, seed=0):
        self._sizes = sizes
        self._seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self._epoch = epoch
        rng = np.random.default_rng((self._seed, epoch))
        n = self._sizes[epoch % len(self._sizes)]
        self._image_index = np.sort(rng.integers(0, max(1, n // 3), size=n)).astype(np.int64)

    def __len__(self):
        return len(self._image_index)

    def chip_image_index(self):
        return self._image_index.copy()

    def chip_key(self, row):
        return f'{self._epoch}:{row}'

    def __getitem__(self, key):
        epoch, row = (int(part) for part in key.split(':'))
        return dict(inputs=torch.tensor([float(epoch), float(row)]), key=key)


def fake_runner(sampler, batch_size, epoch=0, iteration=0, via_batch_sampler=False):
    if via_batch_sampler:
        loader = SimpleNamespace(batch_size=None, sampler=None,
                                 batch_sampler=SimpleNamespace(batch_size=batch_size, sampler=sampler))
    else:
        loader = SimpleNamespace(batch_size=batch_size, sampler=sampler)
    return SimpleNamespace(epoch=epoch, iter=iteration, train_dataloader=loader)


def mid_epoch_checkpoint(runner):
    """What ``Runner.save_checkpoint`` hands the hooks from ``CheckpointHook(by_epoch=False)``."""
    return dict(meta=dict(epoch=runner.epoch, iter=runner.iter + 1))


def spy_on_resume(monkeypatch, sampler):
    calls = []
    resume = sampler.resume

    def recording_resume(epoch, samples_done):
        calls.append((epoch, samples_done))
        resume(epoch, samples_done)

    monkeypatch.setattr(sampler, 'resume', recording_resume)
    return calls


def start_epoch(hook, runner, sampler):
    """The start of ``EpochBasedTrainLoop.run_epoch``: DistSamplerSeedHook, then this hook."""
    sampler.set_epoch(runner.epoch)
    hook.before_train_epoch(runner)


def resumed(checkpoint, sampler, batch_size, via_batch_sampler=False):
    """A new hook and runner after ``Runner.resume`` loaded ``checkpoint`` and before the loop runs."""
    hook = ChipSamplerResumeHook()
    hook.after_load_checkpoint(None, checkpoint)
    runner = fake_runner(sampler, batch_size, checkpoint['meta']['epoch'], checkpoint['meta']['iter'],
                         via_batch_sampler)
    hook.before_train(runner)
    return hook, runner


@pytest.mark.parametrize('via_batch_sampler', [False, True])
def test_mid_epoch_save_then_resume_skips_the_samples_done(monkeypatch, rng, via_batch_sampler):
    sizes, seed = [int(rng.integers(20, 80))], int(rng.integers(0, 2**31))
    dataset = ToyChipDataset(sizes, seed)
    batch_size = int(rng.integers(1, 5))
    epoch, start_iter = int(rng.integers(0, 10)), int(rng.integers(0, 1000))
    sampler = ChipAwareSampler(dataset, seed=1)
    runner = fake_runner(sampler, batch_size, epoch, start_iter, via_batch_sampler)
    hook = ChipSamplerResumeHook()
    start_epoch(hook, runner, sampler)
    whole = list(sampler)
    iters_done = int(rng.integers(1, len(whole) // batch_size + 1))
    runner.iter = start_iter + iters_done - 1
    checkpoint = mid_epoch_checkpoint(runner)
    hook.before_save_checkpoint(runner, checkpoint)
    samples_done = iters_done * batch_size
    assert checkpoint['meta']['chip_sampler'] == dict(
        epoch=epoch, iter=start_iter + iters_done, samples_done=samples_done, world_size=1)

    new_sampler = ChipAwareSampler(ToyChipDataset(sizes, seed), seed=1)
    calls = spy_on_resume(monkeypatch, new_sampler)
    new_hook, new_runner = resumed(checkpoint, new_sampler, batch_size, via_batch_sampler)
    assert calls == [(epoch, samples_done)]
    start_epoch(new_hook, new_runner, new_sampler)
    assert list(new_sampler) == whole[samples_done:]


def test_a_save_at_the_short_last_batch_counts_the_whole_block(rng):
    n = 4 * int(rng.integers(3, 10)) + int(rng.integers(1, 4))
    sampler = ChipAwareSampler(ToyChipDataset([n]), seed=1)
    runner = fake_runner(sampler, 4)
    hook = ChipSamplerResumeHook()
    start_epoch(hook, runner, sampler)
    runner.iter = math.ceil(n / 4) - 1
    checkpoint = mid_epoch_checkpoint(runner)
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint['meta']['chip_sampler']['samples_done'] == n


def test_an_end_of_epoch_save_stores_nothing(rng):
    sampler = ChipAwareSampler(ToyChipDataset([int(rng.integers(10, 30))]), seed=1)
    runner = fake_runner(sampler, 2, epoch=int(rng.integers(0, 5)), iteration=int(rng.integers(0, 100)))
    hook = ChipSamplerResumeHook()
    start_epoch(hook, runner, sampler)
    runner.iter += len(sampler) // 2
    # CheckpointHook(by_epoch=True) saves in after_train_epoch, before the loop counts the epoch.
    checkpoint = dict(meta=dict(epoch=runner.epoch + 1, iter=runner.iter))
    hook.before_save_checkpoint(runner, checkpoint)
    assert 'chip_sampler' not in checkpoint['meta']
    # A save outside an epoch (CheckpointHook's after_train) neither.
    hook.after_train_epoch(runner)
    checkpoint = mid_epoch_checkpoint(runner)
    hook.before_save_checkpoint(runner, checkpoint)
    assert 'chip_sampler' not in checkpoint['meta']


def test_load_from_applies_nothing(monkeypatch, rng):
    dataset = ToyChipDataset([int(rng.integers(10, 30))])
    sampler = ChipAwareSampler(dataset, seed=1)
    whole = list(sampler)
    calls = spy_on_resume(monkeypatch, sampler)
    hook = ChipSamplerResumeHook()
    checkpoint = dict(meta=dict(epoch=0, iter=3, chip_sampler=dict(epoch=0, iter=3, samples_done=6,
                                                                    world_size=1)))
    hook.after_load_checkpoint(None, checkpoint)
    # load_from leaves the loop at its start.
    runner = fake_runner(sampler, 2)
    hook.before_train(runner)
    start_epoch(hook, runner, sampler)
    assert calls == []
    assert list(sampler) == whole


def test_resume_then_save_again_adds_the_samples_of_both_parts(rng):
    sizes = [int(rng.integers(50, 80)), int(rng.integers(50, 80))]
    batch_size = int(rng.integers(1, 4))
    epoch = 2 * int(rng.integers(0, 5))
    first_iters = int(rng.integers(1, 8))
    meta_iter = int(rng.integers(100, 200))
    state = dict(epoch=epoch, iter=meta_iter, samples_done=first_iters * batch_size, world_size=1)
    checkpoint = dict(meta=dict(epoch=epoch, iter=meta_iter, chip_sampler=state))
    sampler = ChipAwareSampler(ToyChipDataset(sizes), seed=1)
    hook, runner = resumed(checkpoint, sampler, batch_size)
    start_epoch(hook, runner, sampler)
    assert len(sampler) == sizes[0] - first_iters * batch_size

    more_iters = int(rng.integers(1, 8))
    runner.iter = meta_iter + more_iters - 1
    again = mid_epoch_checkpoint(runner)
    hook.before_save_checkpoint(runner, again)
    assert again['meta']['chip_sampler'] == dict(
        epoch=epoch, iter=meta_iter + more_iters, samples_done=(first_iters + more_iters) * batch_size,
        world_size=1)

    # The next epoch starts from nothing done.
    hook.after_train_epoch(runner)
    runner.epoch += 1
    runner.iter = meta_iter + 50
    start_epoch(hook, runner, sampler)
    next_iters = int(rng.integers(1, 8))
    runner.iter += next_iters - 1
    later = mid_epoch_checkpoint(runner)
    hook.before_save_checkpoint(runner, later)
    assert later['meta']['chip_sampler']['samples_done'] == next_iters * batch_size


def test_another_world_size_restarts_the_epoch(monkeypatch, rng, warnings):
    sampler = ChipAwareSampler(ToyChipDataset([int(rng.integers(10, 30))]), seed=1)
    calls = spy_on_resume(monkeypatch, sampler)
    state = dict(epoch=0, iter=2, samples_done=4, world_size=2)
    resumed(dict(meta=dict(epoch=0, iter=2, chip_sampler=state)), sampler, 2)
    assert calls == []
    assert len(warnings) == 1 and 'ranks' in warnings[0]


def test_without_a_chip_aware_sampler_it_warns_once_and_does_nothing(warnings):
    runner = fake_runner(list(range(10)), 2)
    hook = ChipSamplerResumeHook()
    hook.after_load_checkpoint(runner, dict(meta=dict(
        epoch=0, iter=0, chip_sampler=dict(epoch=0, iter=0, samples_done=0, world_size=1))))
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    for _ in range(2):
        checkpoint = mid_epoch_checkpoint(runner)
        hook.before_save_checkpoint(runner, checkpoint)
        assert 'chip_sampler' not in checkpoint['meta']
    assert len(warnings) == 1 and 'ChipAwareSampler' in warnings[0]


def test_registered_in_mmdet_hooks():
    assert isinstance(HOOKS.build(dict(type='ChipSamplerResumeHook')), ChipSamplerResumeHook)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, key=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        return dict(loss=out.mean()) if mode == 'loss' else out


class KeyRecorder(Hook):

    def __init__(self):
        self.batches = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches.append(list(data_batch['key']))


def run_training(work_dir, sizes, seed, resume_from=None):
    recorder = KeyRecorder()
    runner = Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'chip_resume_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=ToyChipDataset(sizes, seed),
                              sampler=dict(type='ChipAwareSampler', group_by_image=True),
                              batch_size=2, num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=len(sizes)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[dict(type='ChipSamplerResumeHook'), recorder],
        default_scope='mmdet',
        randomness=dict(seed=seed),
        load_from=None if resume_from is None else str(resume_from),
        resume=resume_from is not None,
        log_level='WARNING',
    )
    runner.train()
    return recorder.batches


def resume_copy(source_dir, checkpoint_name, work_dir, sizes, seed):
    """Resumes a copy of ``source_dir``'s checkpoint in a new work dir."""
    work_dir.mkdir()
    shutil.copy(source_dir / checkpoint_name, work_dir / checkpoint_name)
    return run_training(work_dir, sizes, seed, resume_from=work_dir / checkpoint_name)


def test_a_runner_resumed_mid_epoch_sees_exactly_the_remaining_keys(monkeypatch, tmp_path, rng):
    # mmengine 0.10.7 calls torch.load without weights_only, which torch >= 2.6 defaults to True;
    # its checkpoints hold mmengine objects (the message hub's HistoryBuffer).
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    # Epoch 0 has 9 iterations of 2 (the last one short), epoch 1 has 6: checkpoints every 3
    # iterations fall mid-epoch (3, 6, 12), at the short end of epoch 0 (9) and at the end (15).
    sizes, seed = [17, 12], int(rng.integers(0, 2**31))
    batches = run_training(tmp_path / 'whole', sizes, seed)
    assert len(batches) == 15
    assert sorted(key for batch in batches[:9] for key in batch) == sorted(f'0:{row}' for row in range(17))

    for done in (3, 9, 12):
        resumed_batches = resume_copy(tmp_path / 'whole', f'iter_{done}.pth', tmp_path / f'from_{done}',
                                      sizes, seed)
        assert resumed_batches == batches[done:], f'resumed from iter_{done}.pth'

    # A second mid-epoch checkpoint of a resumed run (iter 6 of a run resumed at 3) is right too.
    again = resume_copy(tmp_path / 'from_3', 'iter_6.pth', tmp_path / 'from_3_then_6', sizes, seed)
    assert again == batches[6:]
