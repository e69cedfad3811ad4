# A tiny SNIPER Faster R-CNN for CPU, for the tests and the demo on the synthetic dataset; not for
# accuracy. Its RPN stage is sniper_rpn_r18_tiny_cpu.py.
_base_ = ['./sniper_faster_rcnn.py', './_base_/sniper_tiny_cpu.py']

model = dict(
    backbone={{_base_.tiny_backbone}},
    neck={{_base_.tiny_neck}},
    rpn_head={{_base_.tiny_rpn_head}},
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=3)),
    # Fewer proposals and sampled RoIs than for COCO: NMS and RoIAlign dominate a CPU step.
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=200), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200)))

train_dataloader = {{_base_.tiny_train_dataloader}}
val_dataloader = {{_base_.tiny_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={{_base_.tiny_val_ann_file}})
test_evaluator = val_evaluator

# The test at the training scales (2x, 1x, long side 256), with ranges widened as the authors' COCO
# test ranges widen their training ranges.
tta_model = dict(chip_size=256)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SniperTestViews', scales=((960, 1280), (480, 640), (256, 256)),
         valid_ranges=((-1, 56), (24, 128), (64, -1)))]

train_cfg = dict(max_epochs=12, val_interval=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1)]
optim_wrapper = {{_base_.tiny_optim_wrapper}}
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1))
