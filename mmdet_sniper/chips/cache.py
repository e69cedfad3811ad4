"""What the on-disk caches of chip tables and proposals share: one writer at a time."""
import contextlib
import fcntl


@contextlib.contextmanager
def cache_lock(path: str):
    """An exclusive ``flock`` on ``path`` (created if needed) while the block runs: the ranks of a node
    (and of a job, where the cache folder is shared and supports locks) make a cache entry once, the
    first to take the lock writing it while the others wait, then read it."""
    with open(path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
