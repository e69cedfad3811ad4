# The tiny CPU RPN of SNIPER's stage 1 on torchvision's ImageNet MobileNetV2, the RPN stage of
# sniper_faster_rcnn_mnv2_tiny_cpu.py: sniper_rpn_r18_tiny_cpu.py with the other backbone.
_base_ = ['./sniper_rpn_r18_tiny_cpu.py', './_base_/mobilenet_v2.py']

model = dict(backbone={{_base_.mnv2_backbone}}, neck={{_base_.mnv2_neck}})
