# SNIPER Faster R-CNN R50-FPN on COCO: trained on 512x512 chips at three scales (Singh, Najibi and
# Davis, "SNIPER: Efficient Multi-Scale Training", NeurIPS 2018), with the authors' COCO settings
# (docs/authors_settings.md: each setting against theirs, with file and line).
#   tools/dist_train.sh configs/sniper_faster_rcnn.py 8
# Negative chips: set train_dataloader.dataset.proposals_file to the proposals of configs/sniper_rpn.py
# (tools/sniper_pipeline.sh runs both stages).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', './_base_/sniper_coco_chips.py']

model = dict(
    backbone={{_base_.sniper_backbone}},
    roi_head=dict(
        # R-CNN trains only on proposals whose size is in the chip's valid range.
        type='ValidRangeRoIHead',
        # One box regressor for all classes, as the authors' (False: one per class, mmdet's default).
        bbox_head=dict(reg_class_agnostic=True)),
    train_cfg=dict(rpn=dict(assigner={{_base_.sniper_rpn_assigner}}),
                   rcnn=dict(assigner={{_base_.sniper_rcnn_assigner}})))

train_dataloader = {{_base_.sniper_train_dataloader}}

# SNIPER's multi-scale test with valid ranges (tools/test.py uses it).
tta_model = {{_base_.sniper_tta_model}}
tta_pipeline = {{_base_.sniper_tta_pipeline}}
optim_wrapper = {{_base_.sniper_optim_wrapper}}
auto_scale_lr = {{_base_.sniper_auto_scale_lr}}
# Stops at the first NaN or infinite loss, saying what to try.
custom_hooks = {{_base_.sniper_custom_hooks}}
# The authors train 7 epochs over COCO stored twice (as is and flipped), the lr divided by 10 after
# 5.33: 14 passes over the images, the step after 10.7. Here every epoch flips at random: 14 epochs,
# the step after 11.
# ChipEpochTrainLoop: the chips of every epoch counted (their number changes each epoch), a
# resume within an epoch going on with its next chip.
train_cfg = dict(type='ChipEpochTrainLoop', max_epochs=14)
param_scheduler = [
    {{_base_.sniper_warmup}},
    dict(type='MultiStepLR', begin=0, end=14, by_epoch=True, milestones=[11], gamma=0.1)]
