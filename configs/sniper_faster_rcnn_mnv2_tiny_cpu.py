# The tiny CPU detector on torchvision's ImageNet MobileNetV2 instead of the randomly initialised
# quarter-width ResNet-18 of sniper_faster_rcnn_r18_tiny_cpu.py. Its RPN stage is
# sniper_rpn_mnv2_tiny_cpu.py.
_base_ = ['./_base_/sniper_faster_rcnn_cpu.py', './_base_/mobilenet_v2.py', './_base_/sniper_tiny_cpu.py']

model = dict(backbone={{_base_.mnv2_backbone}}, neck={{_base_.mnv2_neck}}, roi_head=dict(bbox_head=dict(num_classes=3)))

train_dataloader = dict(dataset={{_base_.tiny_train_dataset}})
val_dataloader = {{_base_.tiny_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={{_base_.tiny_val_ann_file}})
test_evaluator = val_evaluator
tta_pipeline = {{_base_.tiny_tta_pipeline}}

train_cfg = dict(max_epochs=12, val_interval=12)
# At the ResNet-18 config's 0.02 the RoI head's loss diverges within the first 25 iterations on
# the synthetic chips (measured); 0.01 trains smoothly.
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1)]
