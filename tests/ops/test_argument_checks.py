"""Every op's argument checks on every device, from one table of bad arguments.

Each case changes one argument of a valid call and expects the error (type and a fragment of the
message naming the argument) that csrc/op_checks.cpp raises. On cpu and cuda the compiled kernels
check (and, for chip_grid_cover on CUDA, its Python composition); on meta the fake kernels of
mmdet_sniper/ops/chip_ops.py do, so the three must agree. Checks that read the data (finite
coordinates, image sizes >= 1) cannot run on meta tensors and are skipped there.
"""
import re
from typing import Callable, Dict, List, NamedTuple

import pytest
import torch

from mmdet_sniper import ops

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
DEVICES = ['cpu', pytest.param('cuda', marks=needs_gpu), 'meta']


class Case(NamedTuple):
    name: str
    mutate: Callable[[Dict], None]  # changes one entry of the valid arguments, in place
    error: type
    match: str  # a fragment of the message, matched literally
    needs_data: bool = False


class Op(NamedTuple):
    fn: Callable
    valid: Callable[[torch.device], Dict]  # keyword arguments of a valid call on the device
    cases: List[Case]


def replace(name, make):
    def mutate(args):
        args[name] = make(args[name])
    return mutate


def with_value(tensor, value):
    tensor = tensor.clone()
    tensor.view(-1)[-1] = value
    return tensor


def on_other_device(tensor):
    # Ones, valid in every argument, as a meta tensor has no data to copy. No mix reaches a CPU kernel:
    # cpu with meta tensors dispatches to the meta (fake) kernel, cpu with cuda to the CUDA kernel.
    return torch.ones_like(tensor, device='meta' if tensor.device.type == 'cpu' else 'cpu')


def boxes(B, M, device):
    return torch.arange(B * M * 4, dtype=torch.float32, device=device).view(B, M, 4)


def box_cases(name, pair):
    """Bad values of the [B, M, 4] box argument `name`; `pair` is how the errors about batch size and
    device name it and the argument it must match."""
    shape = f'{name} must have shape [B, M, 4]'
    return [
        Case(f'{name}-float64', replace(name, lambda t: t.double()), TypeError, f'{name} must be float32'),
        Case(f'{name}-float16', replace(name, lambda t: t.half()), TypeError, f'{name} must be float32'),
        Case(f'{name}-int64', replace(name, lambda t: t.long()), TypeError, f'{name} must be float32'),
        Case(f'{name}-2d', replace(name, lambda t: t[0]), ValueError, shape),
        Case(f'{name}-3-coordinates', replace(name, lambda t: t[..., :3]), ValueError, shape),
        Case(f'{name}-5-coordinates', replace(name, lambda t: torch.cat([t, t[..., :1]], -1)), ValueError, shape),
        *[Case(f'{name}-{value}', replace(name, lambda t, v=float(value): with_value(t, v)), ValueError,
               f'{name} must hold finite coordinates', needs_data=True) for value in ('nan', 'inf', '-inf')],
        Case(f'{name}-batch', replace(name, lambda t: t[:1]), ValueError, f'{pair} must have the same batch size'),
        Case(f'{name}-device', replace(name, on_other_device), ValueError, f'{pair} must be on the same device'),
    ]


def min_count_cases():
    return [Case(f'min_count-{value}', replace('min_count', lambda _, v=value: v), ValueError,
                 'min_count must be >= 1') for value in (0, -1)]


OPS = {
    'chip_coverage': Op(
        ops.chip_coverage,
        lambda device: dict(chips=boxes(2, 3, device), boxes=boxes(2, 5, device), mode='iof'),
        box_cases('boxes', 'boxes and chips') + box_cases('chips', 'boxes and chips') + [
            Case(f'mode-{mode}', replace('mode', lambda _, m=mode: m), ValueError, "mode must be 'iof' or 'iou'")
            for mode in ('giou', 'IOF', '')
        ]),
    'clip_boxes_to_chips': Op(
        ops.clip_boxes_to_chips,
        lambda device: dict(boxes=boxes(2, 5, device), chips=boxes(2, 3, device)),
        box_cases('boxes', 'boxes and chips') + box_cases('chips', 'boxes and chips')),
    'assign_boxes_to_chips': Op(
        ops.assign_boxes_to_chips,
        lambda device: dict(boxes=boxes(2, 5, device), chips=boxes(2, 3, device)),
        box_cases('boxes', 'boxes and chips') + box_cases('chips', 'boxes and chips')),
    'greedy_chip_cover': Op(
        ops.greedy_chip_cover,
        lambda device: dict(covers=torch.ones(2, 3, 4, dtype=torch.bool, device=device), min_count=1),
        [
            Case('covers-float32', replace('covers', lambda t: t.float()), TypeError, 'covers must be bool'),
            Case('covers-uint8', replace('covers', lambda t: t.to(torch.uint8)), TypeError, 'covers must be bool'),
            Case('covers-2d', replace('covers', lambda t: t[0]), ValueError, 'covers must have shape [B, K, N]'),
            Case('covers-4d', replace('covers', lambda t: t[None]), ValueError, 'covers must have shape [B, K, N]'),
            # An empty batch of 2^31 chips, expanded from one element: a kernel that missed the check
            # would return at once rather than allocate picks for 2^31 chips.
            Case('covers-2^31-chips', replace('covers', lambda t: t.new_ones(0, 1, 1).expand(0, 2**31, 1)),
                 ValueError, 'covers must have fewer than 2^31 chips'),
        ] + min_count_cases()),
    'chip_grid_cover': Op(
        ops.chip_grid_cover,
        lambda device: dict(boxes=boxes(2, 3, device),
                            image_sizes=torch.full((2, 2), 600, dtype=torch.int64, device=device),
                            shuffle_keys=torch.arange(2, device=device), chip_size=512, stride=56, min_iof=1.0,
                            min_count=1),
        box_cases('boxes', 'boxes and image_sizes') + [
            Case('image_sizes-float32', replace('image_sizes', lambda t: t.float()), TypeError,
                 'image_sizes must be int64'),
            Case('image_sizes-int32', replace('image_sizes', lambda t: t.int()), TypeError,
                 'image_sizes must be int64'),
            Case('image_sizes-3-columns', replace('image_sizes', lambda t: t.repeat(1, 2)[:, :3]), ValueError,
                 'image_sizes must have shape [B, 2]'),
            Case('image_sizes-1d', replace('image_sizes', lambda t: t[:, 0]), ValueError,
                 'image_sizes must have shape [B, 2]'),
            Case('image_sizes-batch', replace('image_sizes', lambda t: t[:1]), ValueError,
                 'boxes and image_sizes must have the same batch size'),
            Case('image_sizes-device', replace('image_sizes', on_other_device), ValueError,
                 'boxes and image_sizes must be on the same device'),
            *[Case(f'image_sizes-{value}', replace('image_sizes', lambda t, v=value: with_value(t, v)), ValueError,
                   'image_sizes must be >= 1 pixel', needs_data=True) for value in (0, -600)],
            Case('shuffle_keys-int32', replace('shuffle_keys', lambda t: t.int()), TypeError,
                 'shuffle_keys must be int64'),
            Case('shuffle_keys-2d', replace('shuffle_keys', lambda t: t[:, None]), ValueError,
                 'shuffle_keys must have shape [B]'),
            Case('shuffle_keys-batch', replace('shuffle_keys', lambda t: t[:1]), ValueError,
                 'boxes and shuffle_keys must have the same batch size'),
            Case('shuffle_keys-device', replace('shuffle_keys', on_other_device), ValueError,
                 'boxes and shuffle_keys must be on the same device'),
            *[Case(f'{name}-{value}', replace(name, lambda _, v=value: v), ValueError, f'{name} must be >= 1')
              for name in ('chip_size', 'stride') for value in (0, -512)],
            *[Case(f'min_iof-{value}', replace('min_iof', lambda _, v=value: v), ValueError,
                   'min_iof must be in (0, 1]') for value in (0.0, -0.5, 1.5, float('nan'))],
        ] + min_count_cases()),
}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op', OPS)
def test_valid_arguments_pass(op, device):
    """The base of every bad case is a valid call, so each case fails for its one change alone."""
    device = torch.device(device)
    outputs = OPS[op].fn(**OPS[op].valid(device))
    for out in outputs if isinstance(outputs, tuple) else (outputs, ):
        assert out.device.type == device.type


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('op,case', [pytest.param(name, case, id=f'{name}-{case.name}')
                                     for name, op in OPS.items() for case in op.cases])
def test_bad_argument_is_named(op, case, device):
    device = torch.device(device)
    if case.needs_data and device.type == 'meta':
        pytest.skip('a meta tensor holds no data to check')
    args = OPS[op].valid(device)
    case.mutate(args)
    with pytest.raises(case.error, match=re.escape(case.match)):
        OPS[op].fn(**args)
