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
"""
import glob
import os
from setuptools import find_packages, setup

try:
    import torch
except ModuleNotFoundError as error:
    raise SystemExit('mmdet-sniper compiles its ops against the installed torch: install torch first, then '
                     '`pip install --no-build-isolation .`') from error
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def requirements(name):
    """The requirements listed in requirements/<name>.txt, without comments."""
    with open(os.path.join(ROOT, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def want_cuda():
    force = os.environ.get('FORCE_CUDA')
    if force is not None:
        return force == '1'
    return torch.version.cuda is not None and CUDA_HOME is not None


def make_extension():
    sources = sorted(glob.glob('csrc/*.cpp') + glob.glob('csrc/cpu/*.cpp'))
    # at::parallel_for only spreads work over threads when the caller is compiled with OpenMP.
    extra_compile_args = {'cxx': ['-O3', '-fopenmp']}
    kwargs = dict(extra_link_args=['-fopenmp'])
    if want_cuda():
        sources += sorted(glob.glob('csrc/cuda/*.cu'))
        extra_compile_args['nvcc'] = ['-O3']
        return CUDAExtension('mmdet_sniper._C', sources, extra_compile_args=extra_compile_args, **kwargs)
    return CppExtension('mmdet_sniper._C', sources, extra_compile_args=extra_compile_args, **kwargs)


setup(
    name='mmdet-sniper',
    version='0.1.0',
    description='SNIPER: efficient multi-scale training on chips, as an MMDetection 3.x add-on',
    license='Apache-2.0',
    packages=find_packages(include=['mmdet_sniper', 'mmdet_sniper.*']),
    # BaseException.add_note (3.11) in the dataset's error messages, zip(strict=True) (3.10).
    python_requires='>=3.11',
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
    ext_modules=[make_extension()],
    cmdclass={'build_ext': BuildExtension},
    zip_safe=False,
)
