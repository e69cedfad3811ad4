# A tiny SNIPER Faster R-CNN for CPU, for the tests and the demo on the synthetic dataset; not for
# accuracy. Its RPN stage is sniper_rpn_r18_tiny_cpu.py.
_base_ = ['./_base_/sniper_faster_rcnn_cpu.py', './_base_/sniper_tiny_cpu.py']

model = dict(backbone={{_base_.tiny_backbone}}, neck={{_base_.tiny_neck}}, roi_head=dict(bbox_head=dict(num_classes=3)))

train_dataloader = dict(dataset={{_base_.tiny_train_dataset}})
val_dataloader = {{_base_.tiny_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={{_base_.tiny_val_ann_file}})
test_evaluator = val_evaluator
tta_pipeline = {{_base_.tiny_tta_pipeline}}

train_cfg = dict(max_epochs=12, val_interval=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1)]
