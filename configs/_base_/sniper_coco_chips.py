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

# SNIPER's test (tools/test.py uses it): the full image at each scale, every detection scoring above
# 1e-3 of each (no per-scale NMS), kept only inside its scale's valid range (original pixels,
# lo^2 < area <= hi^2), all merged per class by Gaussian soft-NMS, the best 100 kept (what COCO's
# AP counts; the authors keep 200). tta_model.sliced=True runs each scale in chip_size tiles
# instead, for images far larger than a chip.
sniper_tta_model = dict(
    type='SniperTestTimeAug',
    tta_cfg=dict(nms=dict(type='soft_nms', method='gaussian', sigma=0.55, min_score=1e-3), max_per_img=100))
sniper_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    # Each scale: (short, long) sides, and its valid range in original pixels. Not flipped, as the
    # authors test (flip=True adds the mirrored view of every scale, at twice the cost).
    dict(type='SniperTestViews', scales=((1400, 2000), (800, 1280), (480, 512)),
         valid_ranges=((-1, 90), (32, 180), (75, -1)), flip=False)]

# Anchors with IoU > 0.3 to an ignore region (an out-of-range, crowd or cut ground-truth box) are
# neither positives nor negatives.
sniper_rpn_assigner = dict(
    _delete_=True,
    type='IgnoreRegionAssigner',
    ignore_iou_thr=0.3,
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True,
                  ignore_iof_thr=-1))

# R-CNN: a proposal is an object at IoU >= 0.5 with a target of the chip, else background, unless its
# IoU with an ignore region is above 0.5: then it is neither (docs/authors_settings.md). IoU, not
# mmdet's IoF: with ignore_iof_thr every proposal on a valid small object inside a large ignore
# region (a crowd, an out-of-range box around it) would be ignored, the object never learnt.
sniper_rcnn_assigner = dict(
    _delete_=True,
    type='IgnoreRegionAssigner',
    ignore_iou_thr=0.5,
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5, match_low_quality=False,
                  ignore_iof_thr=-1))

# BatchNorm trained, as the authors do on their 16 chips per GPU (per GPU, not synchronised: 16 chips
# of 512 px give BN enough samples, and SyncBN would add a collective per layer and does not run on
# CPU DDP). Running statistics move by 0.005 a step (MXNet's momentum 0.995). ResNet's stem and
# first stage stay frozen (mmdet's frozen_stages=1), as theirs.
sniper_backbone = dict(norm_cfg=dict(type='BN', requires_grad=True, momentum=0.005), norm_eval=False)

# The authors' optimisation for 128 chips a step (16 on each of 8 GPUs; docs/authors_settings.md):
# SGD at 0.015, whose MXNet kvstore sums the 8 GPUs' gradients where DDP averages them, i.e. 0.12
# here; weight decay 1e-4 applied once per step, i.e. 1.25e-5 at the 8x lr; no clipping (a guard at
# mmdet's usual 35 here, which a stable run never reaches); linear warm-up over 1000 iterations from
# 0.0005 (1/30 of the lr). tools/train.py --auto-scale-lr scales the lr to another total batch.
sniper_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.12, momentum=0.9, weight_decay=1.25e-5),
    clip_grad=dict(max_norm=35, norm_type=2))
sniper_warmup = dict(type='LinearLR', start_factor=1 / 30, by_epoch=False, begin=0, end=1000)
sniper_auto_scale_lr = dict(enable=False, base_batch_size=128)

# A loss gone NaN or infinite does not come back: the run would train on to its end and test to
# nothing. This stops it at the first such iteration, saying what to try (mmdet's CheckInvalidLossHook,
# every iteration, with advice).
sniper_custom_hooks = [dict(type='StopOnNonFiniteLossHook')]
