# SNIPER stage 1: an RPN trained on positive chips only (the paper finds recall does not need negative
# chips), whose proposals on the training images mine the negative chips of stage 2.
#   tools/dist_train.sh configs/sniper_rpn.py 8
#   tools/dist_extract_proposals.sh configs/sniper_rpn.py work_dirs/sniper_rpn/epoch_4.pth 8 --out proposals.pkl
_base_ = ['mmdet::rpn/rpn_r50_fpn_1x_coco.py', './_base_/sniper_coco_chips.py']

model = dict(
    backbone={{_base_.sniper_backbone}},
    train_cfg=dict(rpn=dict(assigner={{_base_.sniper_rpn_assigner}})),
    # What tools/extract_proposals.py keeps per image and scale: the top 300 after NMS at 0.7.
    test_cfg=dict(rpn=dict(nms_pre=2000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7))))

train_dataloader = {{_base_.sniper_train_dataloader}}

# tools/extract_proposals.py runs the RPN on the full training images at these (short, long) sides.
proposal_scales = ((1400, 2000), (800, 1280), (480, 512))

# mmdet's 'proposal_fast' recall fails under numpy 2 (a ragged np.array); pycocotools' AR works.
val_evaluator = dict(metric='proposal')
test_evaluator = val_evaluator

# The authors train this RPN for 2 epochs over COCO stored twice (as is and flipped), i.e. 4 passes,
# at the detector's lr and warm-up, without a step.
optim_wrapper = {{_base_.sniper_optim_wrapper}}
auto_scale_lr = {{_base_.sniper_auto_scale_lr}}
# Stops at the first NaN or infinite loss, saying what to try.
custom_hooks = {{_base_.sniper_custom_hooks}}
# ChipEpochTrainLoop: the chips of every epoch counted (their number changes each epoch), a
# resume within an epoch going on with its next chip.
train_cfg = dict(type='ChipEpochTrainLoop', max_epochs=4, val_interval=4)
param_scheduler = [{{_base_.sniper_warmup}}]
