# The tiny CPU setting shared by the tiny RPN and detector configs: the synthetic dataset of
# tools/make_synthetic_data.py, trained on 256 px chips, and ResNet-18 with a quarter of the
# channels. The names are its own, so that this base merges with a SNIPER config; configs take
# them over with {{_base_.tiny_*}}. SNIPER_DATA_ROOT (environment) moves the data, e.g. for the tests.
tiny_data_root = '{{$SNIPER_DATA_ROOT:data/synthetic/}}'
tiny_classes = ('square', 'disc', 'bar')

# BatchNorm frozen at its initial statistics: a few hundred steps of 4 chips would leave the COCO
# config's slow running statistics (momentum 0.005) far from the data's.
tiny_backbone = dict(depth=18, base_channels=16, init_cfg=None,
                     norm_cfg=dict(_delete_=True, type='BN', requires_grad=True), norm_eval=True)
tiny_neck = dict(in_channels=[16, 32, 64, 128])

tiny_train_dataset = dict(
    scales=(2.0, 1.0, 256),
    valid_ranges=((-1, 48), (24, 112), (80, -1)),
    chip_size=256,
    chip_stride=(28, 32),
    dataset=dict(
        data_root=tiny_data_root + 'train/',
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=tiny_classes),
        filter_cfg=dict(filter_empty_gt=False)))
# The detector's test at the training scales (2x, 1x, long side 256), with ranges widened as the
# authors' COCO test ranges widen their training ranges.
tiny_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SniperTestViews', scales=((960, 1280), (480, 640), (256, 256)),
         valid_ranges=((-1, 56), (24, 128), (64, -1)))]
# tools/extract_proposals.py runs the RPN at the training scales as (short, long) sides, for a
# 400x300 image.
tiny_proposal_scales = ((600, 1280), (300, 640), (192, 256))

# Single-scale full-image validation between the training scales; the SNIPER multi-scale test is
# the tta_* setting of the detector config.
tiny_val_dataloader = dict(
    dataset=dict(
        data_root=tiny_data_root + 'val/',
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=tiny_classes),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(960, 720), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
        ]))
tiny_val_ann_file = tiny_data_root + 'val/annotations.json'
