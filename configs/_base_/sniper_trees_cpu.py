# The aerial tree-crown setting shared by the tree RPN and detector configs (the demo): the data of
# tools/dataset_converters/prepare_tree_data.py (SNIPER_TREE_ROOT moves it), one class, crowns of 8
# to 107 px (sqrt(w * h); median 39, a third below 32). The names are its own, so that this base
# merges with a SNIPER config; configs take them over with {{_base_.trees_*}}.
trees_data_root = '{{$SNIPER_TREE_ROOT:data/trees/}}'
trees_classes = ('tree',)

# 2x for the small crowns, 1x, and the whole image in one 256 px chip for the largest. Each scale
# trains the crowns whose size in original pixels lies in its range: 16 to 80 px in its chips.
trees_train_dataset = dict(
    scales=(2.0, 1.0, 256),
    valid_ranges=((-1, 40), (24, 80), (56, -1)),
    chip_size=256,
    chip_stride=(28, 32),
    dataset=dict(
        data_root=trees_data_root + 'train/',
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=trees_classes),
        filter_cfg=dict(filter_empty_gt=False)))
# The detector's test at the training scales, with ranges widened as the authors' COCO test ranges
# widen their training ranges.
trees_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SniperTestViews', scales=(2.0, 1.0, (256, 256)), valid_ranges=((-1, 48), (20, 96), (48, -1)))]
# tools/extract_proposals.py runs the RPN on the whole training images at the training scales.
trees_proposal_scales = (2.0, 1.0, (256, 256))

# Single-scale validation at the original size; the SNIPER multi-scale test is the tta_* setting
# of the detector config.
trees_val_dataloader = dict(
    dataset=dict(
        data_root=trees_data_root + 'val/',
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=trees_classes),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale_factor=1.0, keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
        ]))
trees_val_ann_file = trees_data_root + 'val/annotations.json'
# The larger validation region holds 132 crowns: every test keeps up to 300 detections per image and
# COCO's AP counts them all (as VisDrone's protocol counts 500), where COCO's 100 would cap recall.
trees_max_dets = 300
trees_evaluator = dict(type='MaxDetsCocoMetric', max_dets=trees_max_dets, ann_file=trees_val_ann_file)
