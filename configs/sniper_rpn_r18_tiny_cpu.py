# The tiny CPU RPN of SNIPER's stage 1, for the tests and the demo on the synthetic dataset.
_base_ = ['./sniper_rpn.py', './_base_/sniper_tiny_cpu.py']

model = dict(
    backbone={{_base_.tiny_backbone}},
    neck={{_base_.tiny_neck}},
    rpn_head={{_base_.tiny_rpn_head}})

train_dataloader = {{_base_.tiny_train_dataloader}}
# The training scales 2x, 1x and 256 px as (short, long) sides, for a 400x300 image.
proposal_scales = ((600, 1280), (300, 640), (192, 256))
val_dataloader = {{_base_.tiny_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={{_base_.tiny_val_ann_file}})
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=6, val_interval=6)
optim_wrapper = {{_base_.tiny_optim_wrapper}}
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=6, by_epoch=True, milestones=[5], gamma=0.1)]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1))
