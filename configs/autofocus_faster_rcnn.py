# AutoFocus (Najibi, Singh and Davis, ICCV 2019) on SNIPER Faster R-CNN R50-FPN, COCO: the detector of
# sniper_faster_rcnn.py with the FocusPixel branch, trained on the same chips, and a test that runs the
# 800 and 1400 px scales only inside the FocusChips of the scale before. The authors' settings
# (configs/faster/sniper_res101_e2e_autofocus.yml), as docs/autofocus.md maps them.
_base_ = './sniper_faster_rcnn.py'

model = dict(
    roi_head=dict(
        type='AutoFocusRoIHead',
        # Their branch reads the stride-16 features; FPN's P4 here. An object is a FocusPixel's at
        # 5 to 64 px (side sqrt(w * h)) in the 512 px chip, ignored up to 90 px.
        focus_head=dict(type='FocusPixelHead', in_channels=256, feat_channels=256, level=2, stride=16,
                        min_size=5, small_size=64, ignore_size=90)))

# Coarse to fine: (480, 512) whole, then 800 and 1400 only in chips. CHIP_HYPERPARAMS: dilation 3,
# thresholds 0.02 and 0.2; minimum chips of 16 and 20 cells of the coarser map, about 512 px of the
# finer view on a COCO image.
tta_model = dict(
    _delete_=True,
    type='AutoFocusTestTimeAug',
    focus_cfgs=[dict(threshold=0.02, dilation=3, min_chip_size=512),
                dict(threshold=0.2, dilation=3, min_chip_size=512)],
    edge_margin=10,
    tta_cfg=dict(nms=dict(type='soft_nms', method='gaussian', sigma=0.55, min_score=1e-3), max_per_img=100))
