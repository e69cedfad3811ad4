# The tiny CPU detector on torchvision's ImageNet MobileNetV2 instead of the randomly initialised
# quarter-width ResNet-18 of sniper_faster_rcnn_r18_tiny_cpu.py. Its RPN stage is
# sniper_rpn_mnv2_tiny_cpu.py.
_base_ = ['./sniper_faster_rcnn_r18_tiny_cpu.py', './_base_/mobilenet_v2.py']

model = dict(backbone={{_base_.mnv2_backbone}}, neck={{_base_.mnv2_neck}})
# At the ResNet-18 config's 0.02 the RoI head's loss diverges within the first 25 iterations on
# the synthetic chips (measured); 0.01 trains smoothly.
optim_wrapper = dict(optimizer=dict(lr=0.01))
