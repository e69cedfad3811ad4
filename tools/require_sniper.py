"""Imported first by the Python tools: a Python that cannot import mmdet_sniper with mmdet stops
with what to do, rather than with a ModuleNotFoundError that looks like a broken install (the shell
tools check the same in python_env.sh)."""
import os.path as osp
import sys

try:
    import mmdet_sniper.engine.launch  # noqa: F401
except ModuleNotFoundError as error:
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    sys.exit(f'{osp.basename(sys.argv[0])}: {sys.executable} cannot import mmdet_sniper: {error}\n'
             f'Run `make env` in {root} and use {root}/.venv/bin/python, or install mmdet-sniper into this '
             f'Python (pip install --no-build-isolation -e {root}).')
