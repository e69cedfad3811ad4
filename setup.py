"""Builds mmdet-sniper and its compiled ops, ``mmdet_sniper._C``.

The CUDA kernels are built when torch has CUDA and nvcc is found, or when ``FORCE_CUDA=1``
(``FORCE_CUDA=0`` builds the CPU kernels only). ``TORCH_CUDA_ARCH_LIST`` picks the GPU
architectures, as for any torch extension. torch's build helpers choose the C++ standard.
"""
import glob
import os

from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
import torch


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
    packages=find_packages(include=['mmdet_sniper', 'mmdet_sniper.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.4'],
    ext_modules=[make_extension()],
    cmdclass={'build_ext': BuildExtension},
    zip_safe=False,
)
