"""The on-disk caches of chip tables and pooled proposals: made once by the first process that needs
an entry, never read torn, never trusted when broken."""
import contextlib
import fcntl
import logging
import os
import os.path as osp
import shutil
from typing import Any, Callable, Tuple

from mmengine.logging import print_log


def load_or_make(path: str, what: str, load: Callable[[str], Any], make: Callable[[], Any],
                 save: Callable[[Any, str], None]) -> Tuple[Any, bool]:
    """The cache entry at ``path`` (a file or a folder): ``load(path)`` where it is readable, otherwise
    ``make()``, written by ``save(value, temporary_path)`` and renamed to ``path``. Returns the value and
    whether it was made here.

    The ranks of a node (and of a job, where the cache folder is shared and supports locks) make an
    entry once: the first to take the lock ``path + '.lock'`` makes it while the others wait, then read
    it. Readers without the lock see no entry or a whole one. An entry that ``load`` fails on (truncated,
    garbage, made for other inputs: ``load`` raises) is made again, with one warning naming ``what``.
    """
    value = _load(path, what, load, warn=True)
    if value is not None:
        return value, False
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with cache_lock(path + '.lock'):
        value = _load(path, what, load, warn=False)  # another process may have made it meanwhile
        if value is not None:
            return value, False
        value = make()
        partial = f'{path}.{os.getpid()}.partial'
        save(value, partial)
        if osp.isdir(path):  # a broken folder; a broken file is replaced by the rename itself
            shutil.rmtree(path)
        os.replace(partial, path)
    return value, True


def _load(path: str, what: str, load: Callable[[str], Any], warn: bool):
    if not osp.exists(path):
        return None
    try:
        return load(path)
    except Exception as error:  # a truncated archive fails in zipfile, zlib or numpy's header parser
        if warn:
            print_log(f'SNIPER {what} cache {path} is unreadable and is made again: {type(error).__name__}: {error}',
                      logger='current', level=logging.WARNING)
        return None


@contextlib.contextmanager
def cache_lock(path: str):
    """An exclusive ``flock`` on ``path`` (created if needed) while the block runs."""
    with open(path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
