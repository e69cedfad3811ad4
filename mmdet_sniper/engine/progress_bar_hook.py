"""TestProgressBarHook: a progress bar over the test loop's batches, on the first rank."""
from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar


@HOOKS.register_module()
class TestProgressBarHook(Hook):
    """Shows how many of this rank's test batches are done (long runs such as proposal extraction
    over a whole training set). Only the first rank draws it; every rank has as many batches."""

    def before_test_epoch(self, runner) -> None:
        self._bar = ProgressBar(len(runner.test_dataloader)) if is_main_process() else None

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._bar is not None:
            self._bar.update()
