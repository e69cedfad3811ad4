# The tiny CPU RPN of SNIPER's stage 1 on torchvision's ImageNet MobileNetV2, the RPN stage of
# sniper_faster_rcnn_mnv2_tiny_cpu.py.
_base_ = ['./_base_/sniper_rpn_cpu.py', './_base_/mobilenet_v2.py', './_base_/sniper_tiny_cpu.py']

model = dict(backbone={{_base_.mnv2_backbone}}, neck={{_base_.mnv2_neck}})

train_dataloader = dict(dataset={{_base_.tiny_train_dataset}})
proposal_scales = {{_base_.tiny_proposal_scales}}
val_dataloader = {{_base_.tiny_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={{_base_.tiny_val_ann_file}})
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=6, val_interval=6)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=6, by_epoch=True, milestones=[5], gamma=0.1)]
