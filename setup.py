"""Builds mmdet-sniper and its compiled ops, ``mmdet_sniper._C``.

The ops compile against the torch that is already installed, so install torch first and build without
pip's build isolation, as OpenMMLab's packages with compiled ops are built:
``pip install --no-build-isolation .`` (add ``'.[mim]'`` for mmcv, mmengine and mmdet). An isolated
build would compile against whatever torch pip fetched into a throwaway build environment, whose ABI
need not match the torch the package then runs with; that is why no pyproject.toml declares torch as a
build requirement.

The CUDA kernels are built when torch has CUDA and nvcc is found, or when ``FORCE_CUDA=1``
(``FORCE_CUDA=0`` builds the CPU kernels only). ``TORCH_CUDA_ARCH_LIST`` picks the GPU
architectures, as for any torch extension. torch's build helpers choose the C++ standard.

Only compiling the ops needs torch: the package's metadata and its source distribution
(``python -m build --sdist``) do not.
"""
import glob
import os
from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
# The oldest torch CI tests (README, "Supported versions"); the ops' fake kernels and the tests'
# opcheck need torch 2.0's torch.library.
MIN_TORCH = (2, 0)


def installed_torch():
    """torch, which the ops compile against, or None; stops with what to do where it is too old."""
    try:
        import torch
    except ModuleNotFoundError:
        return None
    if tuple(int(part) for part in torch.__version__.split('.')[:2]) < MIN_TORCH:
        raise SystemExit(f'mmdet-sniper needs torch >= {".".join(map(str, MIN_TORCH))}, found torch '
                         f'{torch.__version__}: upgrade torch (and mmcv, built for it), then install mmdet-sniper '
                         'again')
    return torch


def requirements(name):
    """The requirements listed in requirements/<name>.txt, without comments."""
    with open(os.path.join(ROOT, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def want_cuda(torch, cuda_home):
    force = os.environ.get('FORCE_CUDA')
    if force is not None:
        return force == '1'
    return torch.version.cuda is not None and cuda_home is not None


def mim_files():
    """``mmdet_sniper/.mim``'s configs and tools, as OpenMMLab's packages carry theirs: ``mmdet_sniper::``
    config names and the ``mmdet-sniper`` command read them there. In a clone they are links to
    ``configs/`` and ``tools/``; a wheel holds copies."""
    package = os.path.join(ROOT, 'mmdet_sniper')
    files = []
    for folder in ('.mim/configs/sniper', '.mim/tools'):
        for dirpath, _, filenames in os.walk(os.path.join(package, folder), followlinks=True):
            if '__pycache__' in dirpath:
                continue
            files += [os.path.relpath(os.path.join(dirpath, name), package) for name in filenames
                      if name.endswith(('.py', '.sh'))]
    return sorted(files + ['.mim/model-index.yml'])


def cpu_sources():
    return sorted(glob.glob('csrc/*.cpp') + glob.glob('csrc/cpu/*.cpp'))


def make_extension(torch):
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension
    sources = cpu_sources()
    # at::parallel_for only spreads work over threads when the caller is compiled with OpenMP. -g0 undoes
    # the -g of Python's own CFLAGS: debug info for torch's templates doubles the compile time (21 s
    # against 11 s for one kernel file on 2 cores) and nearly triples the objects' size.
    extra_compile_args = {'cxx': ['-O3', '-fopenmp', '-g0']}
    kwargs = dict(extra_link_args=['-fopenmp'])
    if want_cuda(torch, CUDA_HOME):
        sources += sorted(glob.glob('csrc/cuda/*.cu'))
        extra_compile_args['nvcc'] = ['-O3']
        return CUDAExtension('mmdet_sniper._C', sources, extra_compile_args=extra_compile_args, **kwargs)
    return CppExtension('mmdet_sniper._C', sources, extra_compile_args=extra_compile_args, **kwargs)


class BuildWithoutTorch(build_ext):
    """build_ext where torch is missing: the metadata and the sdist need no torch, compiling the ops does."""

    def run(self):
        raise SystemExit('mmdet-sniper compiles its ops against the installed torch: install torch first, then '
                         '`pip install --no-build-isolation .`')


TORCH = installed_torch()


setup(
    name='mmdet-sniper',
    version='0.1.0',
    description='SNIPER: efficient multi-scale training on chips, as an MMDetection 3.x add-on',
    license='Apache-2.0',
    packages=find_packages(include=['mmdet_sniper', 'mmdet_sniper.*']),
    package_data={'mmdet_sniper': mim_files()},
    entry_points={'console_scripts': ['mmdet-sniper = mmdet_sniper.cli:main']},
    # The oldest Python CI tests; mmdet_sniper/compat.py holds what newer ones spell differently.
    python_requires='>=3.8',
    # `import mmdet_sniper` and its ops and chips need only these; the modules it registers with mmdet
    # load where mmdet is installed: the 'mim' extra, as OpenMMLab's packages name their OpenMMLab
    # dependencies.
    install_requires=requirements('runtime'),
    extras_require={
        'mim': requirements('mminstall'),
        'tests': requirements('tests'),
        # SAHI, the sliced inference tools/benchmark_inference_peers.py compares SNIPER's test against.
        'bench': requirements('bench'),
        'all': requirements('runtime') + requirements('mminstall') + requirements('tests'),
    },
    ext_modules=[make_extension(TORCH) if TORCH else Extension('mmdet_sniper._C', cpu_sources())],
    cmdclass={'build_ext': TORCH.utils.cpp_extension.BuildExtension if TORCH else BuildWithoutTorch},
    zip_safe=False,
)
