# SNIPER's training data and test on COCO, shared by the RPN (stage 1) and detector (stage 2)
# configs of any mmdet detector. The names are SNIPER's own, so that this base merges with mmdet's;
# a config takes them over with
#   train_dataloader = {{_base_.sniper_train_dataloader}}
#   tta_model = {{_base_.sniper_tta_model}}
custom_imports = dict(imports=['mmdet_sniper'], allow_failed_imports=False)

# Scales: 3x and 1.667x the original image, and the image with its longest side at 512 px. Each
# trains only objects whose size sqrt(w * h) in original pixels lies in its valid range.
sniper = dict(
    scales=(3.0, 1.667, 512),
    valid_ranges=((-1, 80), (32, 150), (120, -1)),
    chip_size=512,
    chip_stride=(56, 60),  # re-drawn every epoch, as the authors do
    proposals_file=None,  # RPN proposals (image id -> [P, 5]) turn on negative chip mining
    neg_chips_per_image=2)  # 0: no negative chips (the ablation)

sniper_train_pipeline = [
    # Keeps the last decoded image: chips of one image in a row decode it once.
    dict(type='CachedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='CropChip', min_target_size=10),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
                    'chip', 'chip_scale_index', 'chip_valid_range', 'chip_positive')),
]
sniper_train_dataloader = dict(
    _delete_=True,
    batch_size=16,  # chips per GPU: 128 chips per batch on 8 GPUs, as in the paper
    num_workers=4,
    persistent_workers=True,
    # Every chip is 512x512: no aspect-ratio grouping; the sampler shards the epoch's chips.
    batch_sampler=None,
    # group_by_image=True sends an image's chips to one worker in a row, decoded once (a faster
    # pipeline, see BENCHMARKS.md), at the cost of batches drawn from fewer images.
    sampler=dict(type='ChipAwareSampler', shuffle=True, group_by_image=False),
    dataset=dict(
        type='SniperDataset',
        **sniper,
        dataset=dict(
            type='CocoDataset',
            data_root='data/coco/',
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=sniper_train_pipeline)))

# SNIPER's test (tools/test.py uses it): the full image at each scale, each scale's detections kept
# only inside its valid range (original pixels, lo^2 < area <= hi^2), all merged per class by
# Gaussian soft-NMS, the best 100 kept. tta_model.sliced=True runs each scale in chip_size tiles
# instead, for images far larger than a chip.
sniper_tta_model = dict(
    type='SniperTestTimeAug',
    tta_cfg=dict(nms=dict(type='soft_nms', method='gaussian', sigma=0.55, min_score=1e-3), max_per_img=100))
sniper_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    # Each scale, flipped and not: (short, long) sides, and its valid range in original pixels.
    dict(type='SniperTestViews', scales=((1400, 2000), (800, 1280), (480, 512)),
         valid_ranges=((-1, 90), (32, 180), (75, -1)))]

# Anchors with IoU > 0.3 to an ignore region (an out-of-range, crowd or cut ground-truth box) are
# neither positives nor negatives.
sniper_rpn_assigner = dict(
    _delete_=True,
    type='IgnoreRegionAssigner',
    ignore_iou_thr=0.3,
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True,
                  ignore_iof_thr=-1))

# Makes a run resumed from a mid-epoch checkpoint continue with the next chip of that epoch.
custom_hooks = [dict(type='ChipSamplerResumeHook')]
