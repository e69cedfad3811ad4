# A tiny SNIPER Faster R-CNN for CPU: ResNet-18 with a quarter of the channels, 256-px chips at three
# scales. For the tests and the demo on the synthetic dataset
# (mmdet_sniper.testing.synthetic_coco.write_synthetic_coco); not for accuracy.
_base_ = './sniper_faster_rcnn.py'

# SNIPER_DATA_ROOT (environment) moves the data, e.g. for the tests.
data_root = '{{$SNIPER_DATA_ROOT:data/synthetic/}}'
classes = ('square', 'disc', 'bar')

model = dict(
    backbone=dict(depth=18, base_channels=16, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=len(classes))),
    # Fewer proposals and sampled RoIs than for COCO: NMS and RoIAlign dominate a CPU step.
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=200), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200)))

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        scales=(2.0, 1.0, 256),
        valid_ranges=((-1, 48), (24, 112), (80, -1)),
        chip_size=256,
        chip_stride=(28, 32),
        dataset=dict(
            data_root=data_root + 'train/',
            ann_file='annotations.json',
            data_prefix=dict(img='images/'),
            metainfo=dict(classes=classes),
            filter_cfg=dict(filter_empty_gt=False))))

# Single-scale full-image test, between the training scales (multi-scale test: see issue 5).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(960, 720), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        pipeline=test_pipeline,
        data_root=data_root + 'val/',
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val/annotations.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=12, val_interval=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1)]
optim_wrapper = dict(optimizer=dict(lr=0.02))
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1))
