# SNIPER stage 1 for the aerial tree crowns of the demo: the RPN of sniper_faster_rcnn_mnv2_trees_cpu.py
# on ImageNet MobileNetV2, trained on positive chips, whose proposals mine the detector's negative chips.
_base_ = ['./_base_/sniper_rpn_cpu.py', './_base_/mobilenet_v2.py', './_base_/sniper_trees_cpu.py']

model = dict(backbone={{_base_.mnv2_backbone}}, neck={{_base_.mnv2_neck}})

train_dataloader = dict(dataset={{_base_.trees_train_dataset}})
proposal_scales = {{_base_.trees_proposal_scales}}
val_dataloader = {{_base_.trees_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={{_base_.trees_val_ann_file}})
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=4, val_interval=4)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=4, by_epoch=True, milestones=[3], gamma=0.1)]
