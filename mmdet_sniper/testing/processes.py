"""Several Python processes that start the same work at the same moment: concurrency tests of what
the ranks of a node share (the chip and proposals caches)."""
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, List, Sequence


def run_together(script: str, args_of: Callable[[int], Sequence[str]], folder: str, count: int = 4,
                 timeout: float = 600) -> None:
    """Runs ``count`` processes of the Python source ``script``, process ``i`` with the arguments
    ``args_of(i)`` followed by two paths, ``go`` and ``ready``: it creates ``ready`` once set up (imports
    done, inputs read) and waits for ``go`` to exist, which appears once every process is ready. The
    processes import this repository (it is put on ``PYTHONPATH``). Returns when all have exited 0;
    raises ``AssertionError`` if one fails."""
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get('PYTHONPATH', '')]))
    go = osp.join(folder, 'go')
    ready: List[str] = [osp.join(folder, f'ready{i}') for i in range(count)]
    children = [subprocess.Popen([sys.executable, '-c', script, *map(str, args_of(i)), go, ready[i]], env=env, cwd=root)
                for i in range(count)]
    try:
        while not all(osp.exists(path) for path in ready):
            assert all(child.poll() is None for child in children), 'a process stopped before it was ready'
            time.sleep(0.05)
        open(go, 'w').close()
        codes = [child.wait(timeout=timeout) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert codes == [0] * count, f'exit codes {codes}'
