# The tiny CPU setting shared by the tiny RPN and detector configs: ResNet-18 with a quarter of the
# channels, 256 px chips, the synthetic dataset of tools/make_synthetic_data.py. The names are its
# own, so that this base merges with a SNIPER config; configs take them over with {{_base_.tiny_*}}.
# SNIPER_DATA_ROOT (environment) moves the data, e.g. for the tests.
tiny_data_root = '{{$SNIPER_DATA_ROOT:data/synthetic/}}'
tiny_classes = ('square', 'disc', 'bar')

# BatchNorm frozen at its initial statistics: a few hundred steps of 4 chips would leave the COCO
# config's slow running statistics (momentum 0.005) far from the data's.
tiny_backbone = dict(depth=18, base_channels=16, init_cfg=None,
                     norm_cfg=dict(_delete_=True, type='BN', requires_grad=True), norm_eval=True)
# mmdet's SGD for its 16-image batch, not the COCO config's for 128 chips.
tiny_optim_wrapper = dict(optimizer=dict(lr=0.02, weight_decay=1e-4))
tiny_neck = dict(in_channels=[16, 32, 64, 128], out_channels=32)
tiny_rpn_head = dict(in_channels=32, feat_channels=32)

tiny_train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        scales=(2.0, 1.0, 256),
        valid_ranges=((-1, 48), (24, 112), (80, -1)),
        chip_size=256,
        chip_stride=(28, 32),
        dataset=dict(
            data_root=tiny_data_root + 'train/',
            ann_file='annotations.json',
            data_prefix=dict(img='images/'),
            metainfo=dict(classes=tiny_classes),
            filter_cfg=dict(filter_empty_gt=False))))

# Single-scale full-image validation between the training scales; the SNIPER multi-scale test is
# the tta_* setting of the detector config.
tiny_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(960, 720), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
tiny_val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=tiny_data_root + 'val/',
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=tiny_classes),
        pipeline=tiny_test_pipeline))
tiny_val_ann_file = tiny_data_root + 'val/annotations.json'

# torchvision's ImageNet MobileNetV2 (converted by tools/model_converters/convert_mobilenet_v2.py;
# SNIPER_MOBILENET moves the checkpoint) in place of the randomly initialised quarter-width ResNet-18.
tiny_mnv2_backbone = dict(
    _delete_=True,
    type='MobileNetV2',
    # layer2, layer3, layer5 and conv2: the last features at strides 4, 8, 16 and 32, as the FPN and
    # the anchor strides expect.
    out_indices=(1, 2, 4, 7),
    # Frozen as mmdet freezes ResNet's stem and first stage: low-level ImageNet filters transfer as they are.
    frozen_stages=1,
    # Chips of 4 images give too few samples for BN statistics; ImageNet's are kept.
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='{{$SNIPER_MOBILENET:data/weights/mobilenet_v2_mmdet.pth}}'))
tiny_mnv2_neck = dict(in_channels=[24, 32, 96, 1280])
