# The tiny CPU RPN of SNIPER's stage 1 on torchvision's ImageNet MobileNetV2, the RPN stage of
# sniper_faster_rcnn_mnv2_tiny_cpu.py.
_base_ = './sniper_rpn_r18_tiny_cpu.py'

model = dict(backbone={{_base_.tiny_mnv2_backbone}}, neck={{_base_.tiny_mnv2_neck}})
