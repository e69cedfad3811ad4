"""StopOnNonFiniteLossHook: stops a training at its first NaN or infinite loss, saying what to try."""
import math

from mmdet.engine.hooks import CheckInvalidLossHook
from mmdet.registry import HOOKS
from mmengine.hooks import RuntimeInfoHook
from mmengine.runner import EpochBasedTrainLoop

ADVICE = ('Try a lower learning rate (optim_wrapper.optimizer.lr), a longer warm-up (the end of the LinearLR in '
          'param_scheduler) or gradient clipping (optim_wrapper.clip_grad), and train again from the start or from '
          'a checkpoint saved before this iteration.')


@HOOKS.register_module()
class StopOnNonFiniteLossHook(CheckInvalidLossHook):
    """mmdet's ``CheckInvalidLossHook``, by default every iteration, with an error that names the
    iteration, the terms that are not finite and the lr, and says what to try.

    A loss that turns NaN does not come back: the run would train on to its end and test to nothing
    ("The testing results of the whole dataset is empty"). The hook raises a ``RuntimeError`` after
    the first iteration whose total loss is NaN or infinite, before the logger and the checkpoint
    hook see it (they run at lower priority), so no NaN checkpoint is saved.

    It reads the losses from the message hub, where mmengine's ``RuntimeInfoHook`` (a default hook,
    of higher priority) has just put them as Python floats: the check costs no extra device
    synchronisation.

    Args:
        interval (int): check every ``interval`` iterations. Defaults to 1.
    """

    def __init__(self, interval: int = 1) -> None:
        super().__init__(interval)

    def before_train(self, runner) -> None:
        # Without RuntimeInfoHook before it, the hub holds no losses of this iteration (a resumed
        # run's hub holds the checkpoint's, which would be checked instead).
        before = runner.hooks[:runner.hooks.index(self)]
        if not any(isinstance(hook, RuntimeInfoHook) for hook in before):
            raise RuntimeError(f'{type(self).__name__} reads the losses that RuntimeInfoHook puts in the message hub, '
                               'so it must run after it: keep default_hooks.runtime_info, and give this hook no '
                               'higher a priority than VERY_HIGH')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if outputs is None or not self.every_n_train_iters(runner, self.interval):
            return
        hub = runner.message_hub
        values = {key: hub.get_scalar(f'train/{key}').current() for key in outputs}
        if math.isfinite(values['loss']):
            return
        terms = ', '.join(f'{key}={value}' for key, value in values.items() if not math.isfinite(value))
        lrs = ', '.join(f'{name} {lr[0]:.4g}' for name, lr in runner.optim_wrapper.get_lr().items())
        # runner.iter and runner.epoch count from 0 and are not yet advanced; the log counts from 1.
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):  # an IterBasedTrainLoop has no epochs
            where += f' (epoch {runner.epoch + 1}, its batch {batch_idx + 1})'
        raise RuntimeError(f'The loss is not finite at {where}: {terms}, at {lrs}. The training stops here. {ADVICE}')
