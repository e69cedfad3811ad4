"""Where the Python and torch versions mmdet-sniper supports spell one thing differently: the only place
that asks for a version. Each shim names the release that needs it and the test that covers it; the
versions themselves are those CI tests (README, "Supported versions"). Needs only torch.
"""
import itertools
import re
import sys
from typing import Callable, Iterable, Iterator, Tuple

import torch

TORCH_VERSION: Tuple[int, int] = tuple(int(part) for part in re.match(r'(\d+)\.(\d+)', torch.__version__).groups())

# torch.library.Library objects unregister their kernels when collected: the ones made here live as long
# as the process. One per (namespace, kind, dispatch key), as torch allows only one kernel per key anyway.
_LIBRARIES = {}


def zip_strict(*iterables: Iterable) -> Iterator[tuple]:
    """``zip(*iterables, strict=True)``: stops with ``ValueError`` where the iterables differ in length.

    ``strict`` is Python 3.10's (tests/test_compat.py::test_zip_strict).
    """
    if sys.version_info >= (3, 10):
        return zip(*iterables, strict=True)
    return _zip_strict(iterables)


def _zip_strict(iterables) -> Iterator[tuple]:
    missing = object()
    for values in itertools.zip_longest(*iterables, fillvalue=missing):
        if any(value is missing for value in values):
            raise ValueError('zip_strict() arguments have different lengths')
        yield values


def add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)``: a line that says where the error happened, shown with its traceback.

    ``BaseException.add_note`` is Python 3.11's. Before it, the note goes into ``__notes__`` as 3.11 keeps
    it, and onto the end of a string message, so that the traceback shows it too
    (tests/test_compat.py::test_add_note, tests/datasets/test_sniper_dataset.py).
    """
    if sys.version_info >= (3, 11):
        error.add_note(note)
        return
    error.__notes__ = [*getattr(error, '__notes__', ()), note]
    if error.args and isinstance(error.args[0], str):
        error.args = (f'{error.args[0]}\n{note}', *error.args[1:])


def _library(qualname: str, dispatch_key: str) -> Tuple['torch.library.Library', str]:
    namespace, _, name = qualname.partition('::')
    key = (namespace, dispatch_key)
    if key not in _LIBRARIES:
        _LIBRARIES[key] = torch.library.Library(namespace, 'IMPL', dispatch_key)
    return _LIBRARIES[key], name


def register_fake(qualname: str) -> Callable[[Callable], Callable]:
    """Decorator: registers the op's fake kernel (shapes, dtypes, devices; no data), as
    ``torch.library.register_fake`` (torch 2.4) does.

    torch 2.2 and 2.3 call it ``impl_abstract``; torch 2.0 and 2.1 have neither, and their fake tensors
    run an op's Meta kernel, so there the function becomes that (tests/ops, ``test_opcheck``).
    """
    if TORCH_VERSION >= (2, 4):
        return torch.library.register_fake(qualname)
    if TORCH_VERSION >= (2, 2):
        return torch.library.impl_abstract(qualname)
    return register_kernel(qualname, 'Meta')


def register_kernel(qualname: str, dispatch_key: str) -> Callable[[Callable], Callable]:
    """Decorator: registers a Python function as the op's kernel for one dispatch key (``'CUDA'``).

    A ``torch.library.Library`` of kind ``IMPL``, which every supported torch has; the qualified-name
    spelling of ``torch.library.impl`` came with torch 2.4 (tests/ops/test_chip_grid_cover.py, its CUDA
    cases on a GPU; tools/cuda_compile_check.sh checks the registration).
    """

    def register(function: Callable) -> Callable:
        library, name = _library(qualname, dispatch_key)
        library.impl(name, function)
        return function

    return register


def opcheck(op, args: tuple, kwargs: dict = None) -> None:
    """``torch.library.opcheck`` (torch 2.4): the op's schema, fake kernel and autograd registration
    agree with its real kernels on these arguments.

    Before torch 2.4 only the fake-kernel part can be checked with public tools: the fake kernel's
    outputs must match the real kernel's in structure, shape, dtype and device (tests/ops,
    ``test_opcheck``; tests/test_compat.py::test_opcheck_catches_a_wrong_fake_kernel).
    """
    kwargs = kwargs or {}
    if TORCH_VERSION >= (2, 4):
        torch.library.opcheck(op, args, kwargs)
        return
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._pytree import tree_flatten, tree_map

    real, real_spec = tree_flatten(op(*args, **kwargs))
    mode = FakeTensorMode()
    fake_args = tree_map(lambda value: mode.from_tensor(value) if isinstance(value, torch.Tensor) else value, args)
    with mode:
        fake, fake_spec = tree_flatten(op(*fake_args, **kwargs))
    if real_spec != fake_spec:
        raise AssertionError(f'{op}: the fake kernel returns {fake_spec}, the real kernel {real_spec}')
    for index, (r, f) in enumerate(zip_strict(real, fake)):
        if (tuple(r.shape), r.dtype, r.device) != (tuple(f.shape), f.dtype, f.device):
            raise AssertionError(f'{op}: output {index} of the fake kernel is {tuple(f.shape)} {f.dtype} on '
                                 f'{f.device}, of the real kernel {tuple(r.shape)} {r.dtype} on {r.device}')


def stdlib_module_names() -> frozenset:
    """``sys.stdlib_module_names`` (Python 3.10): the top-level names of the standard library's modules.

    Before 3.10, the built-in modules and those found in the standard library's folders
    (tests/test_environment.py::test_ops_and_chips_need_only_the_runtime_requirements).
    """
    if sys.version_info >= (3, 10):
        return sys.stdlib_module_names
    import pkgutil
    import sysconfig
    folders = {sysconfig.get_paths()[key] for key in ('stdlib', 'platstdlib')}
    found = {module.name for module in pkgutil.iter_modules([*folders, *(f'{f}/lib-dynload' for f in folders)])}
    return frozenset(found | set(sys.builtin_module_names))
