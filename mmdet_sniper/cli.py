"""``mmdet-sniper TOOL [ARGS]``: runs one of the project's tools from an installed package, as ``python
tools/TOOL.py`` or ``tools/TOOL.sh`` run from a clone (``mmdet-sniper train CONFIG``, ``mmdet-sniper
dist_train CONFIG 8``). ``mmdet-sniper`` alone lists the tools; ``mmdet-sniper configs`` prints where
SNIPER's configs are.

The package carries the tools and configs in ``mmdet_sniper/.mim/`` as OpenMMLab's packages do (in a
clone those are links to ``tools/`` and ``configs/``). A Python tool runs in this interpreter; a shell
tool gets it as ``PYTHON``.
"""
import os
import os.path as osp
import runpy
import subprocess
import sys
from typing import Dict, List, Optional

MIM = osp.join(osp.dirname(osp.abspath(__file__)), '.mim')
TOOLS = osp.join(MIM, 'tools')
# mmengine reads an external package's configs from .mim/configs/<folder>/<file> (``mmdet_sniper::sniper/...``).
CONFIGS = osp.join(MIM, 'configs', 'sniper')


def available_tools() -> Dict[str, str]:
    """Every tool's name (its file name without ``.py`` or ``.sh``) and path."""
    if not osp.isdir(TOOLS):
        raise FileNotFoundError(f'{TOOLS} is missing: this mmdet_sniper was installed without its tools; '
                                'reinstall it from a wheel or an sdist of mmdet-sniper')
    found = {}
    for name in sorted(os.listdir(TOOLS)):
        stem, ext = osp.splitext(name)
        if ext in ('.py', '.sh') and not stem.startswith('_'):
            found[stem] = osp.join(TOOLS, name)
    return found


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tools = available_tools()
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__.strip() + '\n\ntools: ' + ' '.join(tools))
        return 0
    name, args = argv[0], argv[1:]
    if name == 'configs':
        print(CONFIGS)
        return 0
    if name not in tools:
        sys.exit(f'mmdet-sniper: no tool {name!r}; the tools are: {" ".join(tools)}')
    path = tools[name]
    if path.endswith('.sh'):
        return subprocess.call(['bash', path, *args], env=dict(os.environ, PYTHON=sys.executable))
    sys.argv = [path, *args]
    sys.path.insert(0, TOOLS)  # as `python tools/X.py` has it: the tools import their helpers by name
    runpy.run_path(path, run_name='__main__')
    return 0


if __name__ == '__main__':
    sys.exit(main())
