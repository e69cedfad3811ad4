"""Lets an epoch-based run resumed from a mid-epoch checkpoint go on with the chips it had not seen."""
import logging
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..samplers import ChipAwareSampler


@HOOKS.register_module()
class ChipSamplerResumeHook(Hook):
    """Saves how far the current epoch got in a mid-epoch checkpoint and skips that far on resume.

    mmengine's ``EpochBasedTrainLoop`` restarts the whole epoch when it resumes from a checkpoint
    saved within an epoch (``CheckpointHook(by_epoch=False)``), so the chips before the checkpoint
    would be trained on twice. A mid-epoch save stores ``meta['chip_sampler'] = dict(epoch, iter,
    samples_done, world_size)``, ``samples_done`` being the keys each rank has taken from its block of
    the ``ChipAwareSampler`` (iterations times batch size). On resume the hook hands them to
    ``ChipAwareSampler.resume``.

    The count assumes that each iteration takes ``batch_size`` consecutive keys from the sampler, as
    torch's ``BatchSampler`` does; a batch sampler that holds keys back (mmdet's
    ``AspectRatioBatchSampler``) makes the resumed epoch start at a slightly wrong place.
    """

    def __init__(self) -> None:
        self._loaded_state: Optional[dict] = None
        self._resumed_state: Optional[dict] = None
        self._epoch_start_iter: Optional[int] = None
        self._samples_before_start = 0
        self._warned = False

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # ``load_from`` without resume also lands here, so the state is only applied in
        # ``before_train``, once it is known whether the loop took its position from the checkpoint.
        self._loaded_state = checkpoint.get('meta', {}).get('chip_sampler')

    def before_train(self, runner) -> None:
        state, self._loaded_state = self._loaded_state, None
        if state is None or (runner.epoch, runner.iter) != (state['epoch'], state['iter']):
            return
        sampler = self._sampler(runner)
        if sampler is None:
            return
        if state.get('world_size', sampler.world_size) != sampler.world_size:
            # Each rank's done keys are a prefix of its own block; with other blocks they are not.
            print_log(f'ChipSamplerResumeHook: the checkpoint was saved with {state["world_size"]} '
                      f'ranks, this run has {sampler.world_size}; epoch {state["epoch"]} restarts '
                      f'from its beginning', logger='current', level=logging.WARNING)
            return
        sampler.resume(state['epoch'], state['samples_done'])
        self._resumed_state = state

    def before_train_epoch(self, runner) -> None:
        self._epoch_start_iter = runner.iter
        self._samples_before_start = 0
        if self._resumed_state is not None and self._resumed_state['epoch'] == runner.epoch:
            self._samples_before_start = self._resumed_state['samples_done']
        self._resumed_state = None

    def after_train_epoch(self, runner) -> None:
        self._epoch_start_iter = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint['meta']
        # An end-of-epoch save names the next epoch (``runner.epoch + 1``) and needs nothing.
        if self._epoch_start_iter is None or meta.get('epoch') != runner.epoch:
            return
        sampler = self._sampler(runner)
        if sampler is None:
            return
        iters_done = meta['iter'] - self._epoch_start_iter
        samples_done = self._samples_before_start + iters_done * _batch_size(runner.train_dataloader)
        # The last batch of an epoch may be short.
        samples_done = min(samples_done, sampler.num_samples)
        meta['chip_sampler'] = dict(epoch=runner.epoch, iter=meta['iter'], samples_done=samples_done,
                                    world_size=sampler.world_size)

    def _sampler(self, runner) -> Optional[ChipAwareSampler]:
        loader = runner.train_dataloader
        batch_sampler = getattr(loader, 'batch_sampler', None)
        for sampler in (getattr(loader, 'sampler', None), getattr(batch_sampler, 'sampler', None)):
            if isinstance(sampler, ChipAwareSampler):
                return sampler
        if not self._warned:
            print_log('ChipSamplerResumeHook does nothing: the training sampler is not a '
                      'ChipAwareSampler', logger='current', level=logging.WARNING)
            self._warned = True
        return None


def _batch_size(loader) -> int:
    # A DataLoader given a batch sampler has ``batch_size`` None.
    if getattr(loader, 'batch_size', None) is not None:
        return loader.batch_size
    return loader.batch_sampler.batch_size
