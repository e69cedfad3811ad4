"""The epoch-based training loop for SNIPER's chips, whose number changes from epoch to epoch."""
import logging
from typing import Dict, List, Optional, Union

import numpy as np
from mmdet.registry import LOOPS
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from ..samplers import ChipAwareSampler

# The run's layout, kept in the message hub (which checkpoints save): a run resumed within an epoch
# can skip the chips already trained on only if its epochs are cut into the same batches.
LAYOUT_KEY = 'chip_epoch_layout'
# The sampler's seed, kept there too: mmengine builds the sampler with the seed of the run before it
# resumes the run's seed from the checkpoint, and a run without a fixed seed draws a new one.
SEED_KEY = 'chip_sampler_seed'


@LOOPS.register_module()
class ChipEpochTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` over a :class:`ChipAwareSampler`: exact iteration counts, and a resume
    within an epoch that goes on with the next chip.

    SNIPER's epochs differ in length (the chip stride is re-drawn and the negative chips re-sampled
    every epoch), while ``EpochBasedTrainLoop`` takes ``max_epochs`` times the first epoch's length as
    the run's iterations. This loop counts each epoch's own length when the epoch starts (its chip
    table is made then, once per node, and cached): the logged ``[epoch][i/N]`` is exact, and
    ``max_iters`` (with the ETA and the message hub's ``max_iters``) is the sum of the epochs made so
    far plus their mean length for each epoch still to come, exact from the last epoch on, so the
    last iteration is known as the last. Making every table when the loop is built would cost each
    epoch's chips before the first iteration (about a minute per epoch of COCO on one core):
    ``exact_max_iters=True`` does that, for an exact total from the first iteration. Epoch-based
    schedules (``by_epoch=True``) step once per epoch and need nothing; one converted to iterations
    (``convert_to_iter_based=True``) uses the first epoch's length, as mmengine computes it.

    mmengine restarts an epoch from its beginning when it resumes from a checkpoint saved within it
    (``CheckpointHook(by_epoch=False)``), so its first chips would be trained on twice. This loop
    knows where each epoch starts: it has the sampler skip this rank's first ``batches done x
    batch size`` keys and numbers the resumed batches on, in the chip order of the checkpoint's
    sampler seed (also when this run drew another one). That needs the same ranks, batch size and
    epoch lengths as the run that saved the checkpoint; with others the epoch restarts, with a warning.
    It assumes that each iteration takes ``batch_size`` consecutive keys, as torch's ``BatchSampler``
    does (mmdet's ``AspectRatioBatchSampler`` holds keys back).

    Args: those of ``EpochBasedTrainLoop``; the dataloader's sampler must be a ``ChipAwareSampler``.
        exact_max_iters: count every epoch's length when the loop is built. Defaults to False.
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], max_epochs: int, exact_max_iters: bool = False,
                 **kwargs) -> None:
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        if not isinstance(exact_max_iters, bool):
            raise TypeError(f'exact_max_iters must be a bool, got {exact_max_iters!r}')
        self.sampler = _chip_sampler(self.dataloader)
        # The sampler starts at epoch 0, whose length the parameter schedulers, built next, read.
        self.epoch_lengths: List[int] = [len(self.dataloader)]
        self._count_epoch_lengths(self._max_epochs if exact_max_iters else 1)

    @property
    def epoch_starts(self) -> List[int]:
        """The first iteration of each epoch counted so far, and the end of the last one."""
        return np.concatenate([[0], np.cumsum(self.epoch_lengths)]).astype(int).tolist()

    def _count_epoch_lengths(self, epochs: int) -> None:
        """Counts the lengths of the first ``epochs`` epochs (those not counted yet), and re-estimates
        ``max_iters``; leaves the sampler at the last epoch counted."""
        for epoch in range(len(self.epoch_lengths), min(epochs, self._max_epochs)):
            self.sampler.set_epoch(epoch)
            self.epoch_lengths.append(len(self.dataloader))
        to_come = self._max_epochs - len(self.epoch_lengths)
        self._max_iters = sum(self.epoch_lengths) + to_come * round(float(np.mean(self.epoch_lengths)))

    def _layout(self) -> dict:
        return dict(world_size=self.sampler.world_size, batch_size=_batch_size(self.dataloader),
                    epoch_lengths=list(self.epoch_lengths))

    @staticmethod
    def _same_layout(saved: Optional[dict], layout: dict) -> bool:
        """Whether a run with ``saved`` cut the epochs both know into the same batches."""
        if saved is None or any(saved.get(k) != layout[k] for k in ('world_size', 'batch_size')):
            return False
        known = min(len(saved['epoch_lengths']), len(layout['epoch_lengths']))
        return saved['epoch_lengths'][:known] == layout['epoch_lengths'][:known]

    def run(self):
        hub = self.runner.message_hub
        # A resumed run needs the start of the epoch it resumes in.
        self._count_epoch_lengths(self._epoch + 1)
        # runtime_info.get: mmengine < 0.8's get_info has no default and raises on a missing key.
        saved, layout = hub.runtime_info.get(LAYOUT_KEY), self._layout()
        hub.update_info(LAYOUT_KEY, layout)
        saved_seed = hub.runtime_info.get(SEED_KEY)
        if saved_seed is not None and saved_seed != self.sampler.seed:
            print_log(f'ChipEpochTrainLoop: the chips keep the order of the checkpoint\'s sampler seed {saved_seed} '
                      f'(this run\'s: {self.sampler.seed})', logger='current', level=logging.INFO)
            self.sampler.seed = saved_seed
        hub.update_info(SEED_KEY, self.sampler.seed)
        mid_epoch = self._epoch < self._max_epochs and self._iter != self.epoch_starts[self._epoch]
        if mid_epoch and not self._same_layout(saved, layout):
            print_log(f'ChipEpochTrainLoop: the checkpoint (iteration {self._iter}, epoch {self._epoch}) was saved by '
                      f'a run with {saved}, this one has {layout}; epoch {self._epoch} restarts from its beginning, '
                      f'iteration {self.epoch_starts[self._epoch]}', logger='current', level=logging.WARNING)
            self._iter = self.epoch_starts[self._epoch]
        return super().run()

    def run_epoch(self) -> None:
        """Iterate one epoch, or what a resumed run has left of it."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self._count_epoch_lengths(self._epoch + 1)
        self.runner.message_hub.update_info('max_iters', self._max_iters)
        self.runner.message_hub.update_info(LAYOUT_KEY, self._layout())
        batches_done = self._iter - self.epoch_starts[self._epoch]
        self.sampler.set_epoch(self._epoch)
        if batches_done:
            # The epoch's last batch may be short.
            samples_done = min(batches_done * _batch_size(self.dataloader), self.sampler.num_samples)
            self.sampler.set_epoch(self._epoch, samples_done)
        for idx, data_batch in enumerate(self.dataloader, start=batches_done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


def _chip_sampler(loader) -> ChipAwareSampler:
    batch_sampler = getattr(loader, 'batch_sampler', None)
    for sampler in (getattr(loader, 'sampler', None), getattr(batch_sampler, 'sampler', None)):
        if isinstance(sampler, ChipAwareSampler):
            return sampler
    raise TypeError('ChipEpochTrainLoop needs a train_dataloader whose sampler is a ChipAwareSampler, got '
                    f'{type(getattr(loader, "sampler", None)).__name__}')


def _batch_size(loader) -> int:
    # A DataLoader given a batch sampler has ``batch_size`` None.
    if getattr(loader, 'batch_size', None) is not None:
        return loader.batch_size
    return loader.batch_sampler.batch_size
