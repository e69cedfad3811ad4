import glob
import math
import os.path as osp
import re
import shutil
import uuid

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from mmdet_sniper.chips import ChipTable
from mmdet_sniper.engine import chip_epoch_train_loop

BATCH = 2


@pytest.fixture(autouse=True)
def checkpoints_load(monkeypatch):
    # mmengine 0.10.7 calls torch.load without weights_only, which torch >= 2.6 defaults to True;
    # its checkpoints hold mmengine objects (the message hub's HistoryBuffer).
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


class ToyChips:
    """``EpochChips`` stand-in: ``sizes[epoch]`` chips over a few images; row ``r``'s chip is ``(r, 0, r+1, 1)``."""

    def __init__(self, sizes, seed):
        self.sizes, self.seed = sizes, seed
        self.epochs_made = []

    def table(self, epoch):
        if epoch not in self.epochs_made:
            self.epochs_made.append(epoch)
        n = self.sizes[epoch]
        image_index = np.sort(np.random.default_rng((self.seed, epoch)).integers(0, max(1, n // 3), n))
        rows = np.arange(n, dtype=np.float32)
        return ChipTable(image_index=image_index.astype(np.int64), scale_index=np.zeros(n, np.int64),
                         scale_factor=np.ones((n, 2), np.float32),
                         chips=np.stack([rows, np.zeros(n), rows + 1, np.ones(n)], 1).astype(np.float32),
                         positive=np.ones(n, bool), box_count=np.ones(n, np.int64),
                         image_sizes=np.full((n // 3 + 1, 2), 600), scaled_sizes=np.full((n // 3 + 1, 1, 2), 600),
                         stride=32)


class ToyChipDataset:
    """A SniperDataset stand-in: a chip key in, its epoch and row out (``'epoch:row'``, a string, which
    mmengine's collate keeps as it is)."""

    metainfo = dict(classes=('thing',))

    def __init__(self, sizes, seed):
        self.chips = ToyChips(sizes, seed)

    def __getitem__(self, key):
        return dict(inputs=torch.tensor([float(key.epoch), key.chip[0]]), key=f'{key.epoch}:{int(key.chip[0])}')


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, key=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        return dict(loss=out.mean()) if mode == 'loss' else out


class Recorder(Hook):
    """The keys of every batch, the lr of every iteration, the loop's total at the start and at each
    epoch's start (the message hub's and the runner's), and the epochs whose chips were made by then."""

    def __init__(self):
        self.batches, self.lrs, self.max_iters, self.epoch_max_iters = [], [], None, []
        self.epochs_made_before_training = None

    def before_train(self, runner):
        self.max_iters = runner.message_hub.get_info('max_iters')
        self.epochs_made_before_training = list(runner.train_dataloader.dataset.chips.epochs_made)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if batch_idx == 0:
            self.epoch_max_iters.append((runner.message_hub.get_info('max_iters'), runner.max_iters))
        self.batches.append(list(data_batch['key']))
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def run_training(work_dir, sizes, seed, resume_from=None, batch_size=BATCH, param_scheduler=None, run_seed='same',
                 exact_max_iters=False):
    """A run over ``ToyChipDataset(sizes, seed)``; its randomness seed (the sampler's) is ``seed`` too, or
    ``run_seed``."""
    recorder = Recorder()
    runner = Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'chip_loop_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=ToyChipDataset(sizes, seed),
                              sampler=dict(type='ChipAwareSampler', group_by_image=True),
                              batch_size=batch_size, num_workers=0),
        train_cfg=dict(type='ChipEpochTrainLoop', max_epochs=len(sizes), exact_max_iters=exact_max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=param_scheduler,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[recorder],
        default_scope='mmdet',
        randomness=dict(seed=seed if run_seed == 'same' else run_seed),
        load_from=None if resume_from is None else str(resume_from),
        resume=resume_from is not None,
        log_level='INFO',
    )
    runner.train()
    return runner, recorder


def logged_iterations(runner):
    """``(epoch, iteration, iterations of the epoch)`` of every training line of the run's log."""
    (log,) = glob.glob(osp.join(runner.log_dir, '*.log'))
    with open(log) as f:
        return [tuple(int(v) for v in m.groups())
                for m in re.finditer(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]', f.read())]


@pytest.mark.parametrize('exact_max_iters', [False, True])
def test_max_iters_the_logs_and_the_schedules_count_every_epochs_own_length(tmp_path, rng, exact_max_iters):
    sizes = [int(n) for n in rng.integers(5, 40, size=3)]
    # Epochs of different lengths, none shorter than the first: the first one times 3 is wrong.
    sizes[1] = sizes[0] + 2 * BATCH + 1
    sizes[2] = sizes[0] + sizes[2] % 10
    seed = int(rng.integers(0, 2**31))
    lengths = [math.ceil(n / BATCH) for n in sizes]
    warmup_end = sum(lengths) + 5  # still warming up at the last iteration: every step shows in the lr
    schedulers = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_end),
                  dict(type='MultiStepLR', by_epoch=True, milestones=[1, 2], gamma=0.5)]
    runner, recorder = run_training(tmp_path, sizes, seed, param_scheduler=schedulers, exact_max_iters=exact_max_iters)

    assert runner.max_iters == runner.iter == sum(lengths) != len(sizes) * lengths[0]
    assert runner.train_loop.epoch_lengths == lengths
    if exact_max_iters:
        assert recorder.epochs_made_before_training == [0, 1, 2]
        assert recorder.epoch_max_iters == [(sum(lengths), sum(lengths))] * 3
    else:
        # Only epoch 0's chips before the first iteration; the epochs to come are estimated at the
        # mean length of those made, exact from the last epoch on.
        assert recorder.epochs_made_before_training == [0]
        assert recorder.max_iters == 3 * lengths[0]
        estimates = [3 * lengths[0], lengths[0] + lengths[1] + round((lengths[0] + lengths[1]) / 2), sum(lengths)]
        assert recorder.epoch_max_iters == [(n, n) for n in estimates]
    logged = logged_iterations(runner)
    assert logged == [(epoch + 1, i + 1, n) for epoch, n in enumerate(lengths) for i in range(n)]
    # The iteration schedule stepped once per iteration, the epoch schedule once per epoch: the lr of
    # every iteration is the warm-up's at that iteration, halved at each epoch's end.
    assert runner.param_schedulers[0].last_step == sum(lengths)
    expected = [0.01 * (0.1 + 0.9 * i / (warmup_end - 1)) * 0.5 ** epoch
                for epoch, n in enumerate(lengths) for i in range(sum(lengths[:epoch]), sum(lengths[:epoch + 1]))]
    np.testing.assert_allclose(recorder.lrs, expected, rtol=1e-6)
    # Every chip of every epoch once (each epoch's last batch may be short, never padded here).
    for epoch, n in enumerate(sizes):
        start = sum(lengths[:epoch])
        seen = [key for batch in recorder.batches[start:start + lengths[epoch]] for key in batch]
        assert sorted(seen) == sorted(f'{epoch}:{row}' for row in range(n))


def resume_copy(source_dir, checkpoint_name, work_dir, sizes, seed, **kwargs):
    """Resumes a copy of ``source_dir``'s checkpoint in a new work dir."""
    work_dir.mkdir()
    shutil.copy(source_dir / checkpoint_name, work_dir / checkpoint_name)
    return run_training(work_dir, sizes, seed, resume_from=work_dir / checkpoint_name, **kwargs)


def test_a_run_resumed_mid_epoch_sees_exactly_the_remaining_keys_and_numbers_them_on(tmp_path, rng):
    # Epoch 0 has 9 iterations of 2 (the last one short), epoch 1 has 6: checkpoints every 3
    # iterations fall mid-epoch (3, 6, 12), at the short end of epoch 0 (9) and at the end (15).
    sizes, seed = [17, 12], int(rng.integers(0, 2**31))
    whole, recorded = run_training(tmp_path / 'whole', sizes, seed)
    batches, logged = recorded.batches, logged_iterations(whole)
    assert len(batches) == 15

    for done in (3, 9, 12):
        runner, resumed = resume_copy(tmp_path / 'whole', f'iter_{done}.pth', tmp_path / f'from_{done}', sizes, seed)
        assert resumed.batches == batches[done:], f'resumed from iter_{done}.pth'
        assert logged_iterations(runner) == logged[done:] and runner.iter == runner.max_iters == 15

    # A second mid-epoch checkpoint of a resumed run (iter 6 of a run resumed at 3) is right too.
    _, again = resume_copy(tmp_path / 'from_3', 'iter_6.pth', tmp_path / 'from_3_then_6', sizes, seed)
    assert again.batches == batches[6:]


def test_a_run_without_a_fixed_seed_resumes_mid_epoch_in_the_checkpoints_chip_order(tmp_path, rng):
    # Without a seed every run draws its own, and mmengine builds the sampler with it before it
    # takes the checkpoint's seed back: the resumed epoch must still go on in the saved order.
    sizes, seed = [17, 12], int(rng.integers(0, 2**31))
    _, whole = run_training(tmp_path / 'whole', sizes, seed, run_seed=None)
    for done in (3, 12):
        runner, resumed = resume_copy(tmp_path / 'whole', f'iter_{done}.pth', tmp_path / f'from_{done}', sizes, seed,
                                      run_seed=None)
        assert resumed.batches == whole.batches[done:], f'resumed from iter_{done}.pth'
        assert runner.iter == runner.max_iters == 15


def test_a_resume_with_another_batch_size_restarts_the_epoch(tmp_path, rng, monkeypatch):
    warnings = []
    monkeypatch.setattr(chip_epoch_train_loop, 'print_log', lambda message, **kwargs: warnings.append(message))
    sizes, seed = [17, 12], int(rng.integers(0, 2**31))
    run_training(tmp_path / 'whole', sizes, seed)
    # iter_12 is 3 batches into epoch 1; with batches of 3, epoch 0 is 6 iterations, epoch 1 is 4.
    runner, resumed = resume_copy(tmp_path / 'whole', 'iter_12.pth', tmp_path / 'from_12', sizes, seed, batch_size=3)
    assert len(warnings) == 1 and 'epoch 1 restarts from its beginning, iteration 6' in warnings[0]
    assert sorted(key for batch in resumed.batches for key in batch) == sorted(f'1:{row}' for row in range(12))
    assert runner.iter == runner.max_iters == 10


def test_a_loader_without_a_chip_aware_sampler_is_refused(tmp_path):
    with pytest.raises(TypeError, match='ChipEpochTrainLoop needs a train_dataloader whose sampler is a '
                                        'ChipAwareSampler, got DefaultSampler'):
        Runner(model=ToyModel(), work_dir=str(tmp_path), experiment_name=f'chip_loop_{uuid.uuid4().hex}',
               train_dataloader=dict(dataset=[dict(inputs=torch.zeros(2))] * 4,
                                     sampler=dict(type='DefaultSampler'), batch_size=2, num_workers=0),
               train_cfg=dict(type='ChipEpochTrainLoop', max_epochs=1),
               optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)), default_scope='mmdet').train()
