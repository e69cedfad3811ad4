# The COCO detector narrowed for 2 CPU cores, the base of the tiny (synthetic data) and tree (demo)
# detectors, which inherit it side by side and add their backbone, neck inputs, classes and data:
# a 32-channel FPN and heads, fewer proposals, 4 chips a step loaded in the main process.
_base_ = '../sniper_faster_rcnn.py'

model = dict(
    neck=dict(out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=32), bbox_head=dict(in_channels=32, fc_out_channels=64)),
    # Fewer proposals and sampled RoIs than for COCO: NMS and RoIAlign dominate a CPU step.
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=200), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200)))

train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
# The sliced test's tiles: the 256 px chips both CPU datasets train on.
tta_model = dict(chip_size=256)

# mmdet's SGD for its 16-image batch, not the COCO config's for 128 chips.
optim_wrapper = dict(optimizer=dict(lr=0.02, weight_decay=1e-4))
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1))
