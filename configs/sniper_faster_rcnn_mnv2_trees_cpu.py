# SNIPER Faster R-CNN on ImageNet MobileNetV2 for the aerial tree crowns of the demo (`make demo`),
# sized for 2 CPU cores. Its RPN stage is sniper_rpn_mnv2_trees_cpu.py; tools/sniper_pipeline.sh
# runs both stages.
_base_ = ['./_base_/sniper_faster_rcnn_cpu.py', './_base_/mobilenet_v2.py', './_base_/sniper_trees_cpu.py']

model = dict(
    backbone={{_base_.mnv2_backbone}},
    neck={{_base_.mnv2_neck}},
    roi_head=dict(bbox_head=dict(num_classes=1)),
    test_cfg=dict(rcnn=dict(max_per_img={{_base_.trees_max_dets}})))

train_dataloader = dict(dataset={{_base_.trees_train_dataset}})
val_dataloader = {{_base_.trees_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.trees_evaluator}}
test_evaluator = val_evaluator
tta_model = dict(tta_cfg=dict(max_per_img={{_base_.trees_max_dets}}))
tta_pipeline = {{_base_.trees_tta_pipeline}}

# About 1100 iterations of 4 chips, 5 minutes on 2 CPU cores. A slow warm-up keeps lr 0.01 stable
# (without it the RoI head's loss diverged to NaN in the first epoch).
train_cfg = dict(max_epochs=16, val_interval=16)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True, milestones=[12, 15], gamma=0.1)]
