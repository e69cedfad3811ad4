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

# SNIPER's test (tools/test.py uses it): the full image at each scale, each scale's detections kept
# only inside its valid range (original pixels, lo^2 < area <= hi^2), all merged per class by
# Gaussian soft-NMS, the best 100 kept. tta_model.sliced=True runs each scale in chip_size tiles
# instead, for images far larger than a chip.
tta_model = dict(
    type='SniperTestTimeAug',
    tta_cfg=dict(nms=dict(type='soft_nms', method='gaussian', sigma=0.55, min_score=1e-3), max_per_img=100))
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    # Each scale, flipped and not: (short, long) sides, and its valid range in original pixels.
    dict(type='SniperTestViews', scales=((1400, 2000), (800, 1280), (480, 512)),
         valid_ranges=((-1, 90), (32, 180), (75, -1)))]

# Not tuned for chips yet: mmdet's lr for 16 images, with a batch of 128 chips.
auto_scale_lr = dict(enable=False, base_batch_size=128)
