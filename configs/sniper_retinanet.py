# SNIPER with another mmdet detector, by inheritance alone: RetinaNet R50-FPN on COCO chips. A
# one-stage detector takes SNIPER's training data, its ignore-region rule in the assigner and its
# multi-scale test; it has no RPN of its own, so negative chips need the proposals of
# configs/sniper_rpn.py (train_dataloader.dataset.proposals_file), or go without them.
#   tools/dist_train.sh configs/sniper_retinanet.py 8
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', './_base_/sniper_coco_chips.py']

model = dict(
    train_cfg=dict(
        assigner=dict(
            _delete_=True,
            type='IgnoreRegionAssigner',
            ignore_iou_thr=0.3,
            # RetinaNet's own assigner, its ignore regions handed to the wrapper.
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                          ignore_iof_thr=-1))))

train_dataloader = {{_base_.sniper_train_dataloader}}
# ChipEpochTrainLoop: the chips of every epoch counted (their number changes each epoch), a
# resume within an epoch going on with its next chip.
train_cfg = dict(type='ChipEpochTrainLoop')
tta_model = {{_base_.sniper_tta_model}}
tta_pipeline = {{_base_.sniper_tta_pipeline}}
auto_scale_lr = dict(enable=False, base_batch_size=128)
# Stops at the first NaN or infinite loss, saying what to try.
custom_hooks = {{_base_.sniper_custom_hooks}}
