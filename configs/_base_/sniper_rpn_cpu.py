# The COCO RPN (SNIPER's stage 1) narrowed for 2 CPU cores, the base of the tiny (synthetic data) and
# tree (demo) RPNs, which inherit it side by side and add their backbone, neck inputs and data:
# a 32-channel FPN and head, 4 chips a step loaded in the main process.
_base_ = '../sniper_rpn.py'

model = dict(neck=dict(out_channels=32), rpn_head=dict(in_channels=32, feat_channels=32))

train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader

# mmdet's SGD for its 16-image batch, not the COCO config's for 128 chips.
optim_wrapper = dict(optimizer=dict(lr=0.02, weight_decay=1e-4))
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1))
