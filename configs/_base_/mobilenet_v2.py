# torchvision's ImageNet MobileNetV2 (converted by tools/model_converters/convert_mobilenet_v2.py; SNIPER_MOBILENET
# moves the checkpoint) for the CPU configs, shared by the tiny and the tree ones. The names are its
# own, so that this base merges with a SNIPER config; configs take them over with
#   model = dict(backbone={{_base_.mnv2_backbone}}, neck={{_base_.mnv2_neck}})
mnv2_backbone = dict(
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
mnv2_neck = dict(in_channels=[24, 32, 96, 1280])
