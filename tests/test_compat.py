"""mmdet_sniper.compat behaves alike on every supported Python and torch: each shim against what the
newest versions do themselves."""
import sys

import pytest
import torch
from torch.library import Library

from mmdet_sniper.compat import add_note, opcheck, register_fake, stdlib_module_names, zip_strict

# One op per fake kernel under test: torch allows a single fake kernel per op.
_LIBRARY = Library('sniper_compat_test', 'DEF')
_LIBRARY.define('halves_right(Tensor x) -> Tensor')
_LIBRARY.define('halves_wrong(Tensor x) -> Tensor')
for _name in ('halves_right', 'halves_wrong'):
    _LIBRARY.impl(_name, lambda x: x[: x.shape[0] // 2] * 0.5, 'CPU')


@register_fake('sniper_compat_test::halves_right')
def _halves_right_fake(x):
    return x.new_empty((x.shape[0] // 2, *x.shape[1:]))


@register_fake('sniper_compat_test::halves_wrong')
def _halves_wrong_fake(x):
    return x.new_empty(x.shape)  # the whole length: not what the real kernel returns


@pytest.mark.parametrize('lengths', [(0, 0), (3, 3), (4, 4, 4)])
def test_zip_strict_pairs_equal_lengths(lengths):
    iterables = [list(range(n)) for n in lengths]
    assert list(zip_strict(*iterables)) == list(zip(*iterables))


@pytest.mark.parametrize('lengths', [(2, 3), (3, 2), (0, 1), (3, 3, 1)])
def test_zip_strict_refuses_unequal_lengths(lengths):
    with pytest.raises(ValueError):
        list(zip_strict(*[iter(range(n)) for n in lengths]))


def test_add_note_keeps_the_note_for_the_traceback():
    error = KeyError('images/3.jpg')
    add_note(error, 'while loading chip 3')
    add_note(error, 'of epoch 1')
    assert error.__notes__ == ['while loading chip 3', 'of epoch 1']
    message = ValueError('bad box')
    add_note(message, 'while loading chip 3')
    if sys.version_info >= (3, 11):
        assert str(message) == 'bad box'  # Python prints the notes after the message itself
    else:
        assert str(message) == 'bad box\nwhile loading chip 3'


def test_opcheck_passes_a_right_fake_kernel():
    opcheck(torch.ops.sniper_compat_test.halves_right.default, (torch.randn(6, 2),))


def test_opcheck_catches_a_wrong_fake_kernel():
    with pytest.raises(Exception, match='(?i)shape|size|fake'):
        opcheck(torch.ops.sniper_compat_test.halves_wrong.default, (torch.randn(6, 2),))


def test_stdlib_module_names():
    names = stdlib_module_names()
    assert {'json', 'os', 'sys', 'itertools', 'collections'} <= names
    assert not {'torch', 'numpy', 'mmdet_sniper', 'pytest'} & names
