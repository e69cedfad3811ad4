import os.path as osp
import uuid

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import mmdet_sniper  # noqa: F401  (registers the hook)

EPOCH_LENGTH, EPOCHS = 5, 3


class ToyDetector(BaseModel):
    """Two loss terms and an accuracy; ``bad_term`` turns ``bad_value`` at the ``bad_iter``-th forward."""

    def __init__(self, bad_iter=None, bad_term='loss_bbox', bad_value=float('nan')):
        super().__init__()
        self.linear = nn.Linear(1, 2)
        self.bad_iter, self.bad_term, self.bad_value = bad_iter, bad_term, bad_value
        self.calls = 0

    def forward(self, inputs, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode != 'loss':
            return out
        self.calls += 1
        losses = dict(loss_cls=out[:, 0].abs().mean(), loss_bbox=out[:, 1].abs().mean(), acc=torch.tensor(50.0))
        if self.calls == self.bad_iter:
            losses[self.bad_term] = losses[self.bad_term] * self.bad_value
        return losses


class IterationRecorder(Hook):
    priority = 'HIGHEST'

    def __init__(self):
        self.iterations = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iterations.append(runner.iter + 1)


def make_runner(work_dir, model, hook=None, train_cfg=None):
    recorder = IterationRecorder()
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=f'nan_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=[dict(inputs=torch.tensor([float(i)])) for i in range(EPOCH_LENGTH)],
                              sampler=dict(type='DefaultSampler', shuffle=False), batch_size=1, num_workers=0),
        train_cfg=train_cfg or dict(by_epoch=True, max_epochs=EPOCHS),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1)),
        custom_hooks=[recorder, hook or dict(type='StopOnNonFiniteLossHook')],
        default_scope='mmdet',
    )
    return runner, recorder


@pytest.mark.parametrize('bad_iter, bad_term, bad_value', [(1, 'loss_bbox', float('nan')),
                                                           (EPOCH_LENGTH + 3, 'loss_cls', float('inf')),
                                                           (EPOCH_LENGTH * EPOCHS, 'loss_bbox', float('-inf'))])
def test_the_training_stops_at_the_first_non_finite_loss_and_says_what_to_try(tmp_path, bad_iter, bad_term, bad_value):
    runner, recorder = make_runner(tmp_path, ToyDetector(bad_iter, bad_term, bad_value))
    with pytest.raises(RuntimeError) as raised:
        runner.train()
    message = str(raised.value)

    assert recorder.iterations == list(range(1, bad_iter + 1))  # nothing trained after it
    epoch, batch = divmod(bad_iter - 1, EPOCH_LENGTH)
    assert f'at iteration {bad_iter} (epoch {epoch + 1}, its batch {batch + 1})' in message
    good_term = ({'loss_cls', 'loss_bbox'} - {bad_term}).pop()
    assert f'{bad_term}={bad_value}' in message and f'loss={bad_value}' in message
    assert good_term not in message and 'acc' not in message
    assert 'lr 0.01' in message
    for setting in ('optim_wrapper.optimizer.lr', 'LinearLR', 'param_scheduler', 'optim_wrapper.clip_grad'):
        assert setting in message
    # The hook raises before the checkpoint hook (lower priority) saves the iteration's weights.
    assert osp.exists(osp.join(runner.work_dir, f'iter_{bad_iter - 1}.pth')) or bad_iter == 1
    assert not osp.exists(osp.join(runner.work_dir, f'iter_{bad_iter}.pth'))


def test_an_iteration_based_training_names_no_epoch(tmp_path):
    runner, recorder = make_runner(tmp_path, ToyDetector(bad_iter=EPOCH_LENGTH + 2),
                                   train_cfg=dict(by_epoch=False, max_iters=EPOCH_LENGTH * EPOCHS))
    with pytest.raises(RuntimeError, match=f'at iteration {EPOCH_LENGTH + 2}: loss=nan, loss_bbox=nan, at lr 0.01'):
        runner.train()
    assert recorder.iterations == list(range(1, EPOCH_LENGTH + 3))


def test_a_finite_training_runs_to_its_end(tmp_path):
    runner, recorder = make_runner(tmp_path, ToyDetector())
    runner.train()
    assert runner.iter == EPOCH_LENGTH * EPOCHS and recorder.iterations == list(range(1, runner.iter + 1))


def test_the_hook_refuses_to_run_before_runtime_info_hook(tmp_path):
    """It reads the losses RuntimeInfoHook stores; before it, it would read the previous iteration's."""
    runner, recorder = make_runner(tmp_path, ToyDetector(bad_iter=2),
                                   hook=dict(type='StopOnNonFiniteLossHook', priority='HIGHEST'))
    with pytest.raises(RuntimeError, match='must run after it'):
        runner.train()
    assert recorder.iterations == []
