# SNIPER Faster R-CNN R50-FPN on COCO: trained on 512x512 chips at three scales (Singh, Najibi and
# Davis, "SNIPER: Efficient Multi-Scale Training", NeurIPS 2018), with the authors' COCO settings.
#   tools/dist_train.sh configs/sniper_faster_rcnn.py 8
# Negative chips: set train_dataloader.dataset.proposals_file to the proposals of configs/sniper_rpn.py
# (tools/sniper_pipeline.sh runs both stages).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', './_base_/sniper_coco_chips.py']

model = dict(
    # R-CNN trains only on proposals whose size is in the chip's valid range.
    roi_head=dict(type='ValidRangeRoIHead'),
    train_cfg=dict(
        rpn=dict(assigner={{_base_.sniper_rpn_assigner}}),
        # Proposals lying mostly inside an ignore region are not trained on either.
        rcnn=dict(assigner=dict(ignore_iof_thr=0.5))))

train_dataloader = {{_base_.sniper_train_dataloader}}

# SNIPER's multi-scale test with valid ranges (tools/test.py uses it).
tta_model = {{_base_.sniper_tta_model}}
tta_pipeline = {{_base_.sniper_tta_pipeline}}
# Not tuned for chips yet: mmdet's lr for 16 images, with a batch of 128 chips.
auto_scale_lr = dict(enable=False, base_batch_size=128)
