import subprocess

import pytest
import wheels  # tools/misc, put on sys.path by conftest.py


def test_a_wheel_in_the_folder_is_used_without_pip(tmp_path, monkeypatch):
    (tmp_path / 'some_package-1.0.1-py3-none-any.whl').write_bytes(b'')
    monkeypatch.setattr(wheels.subprocess, 'run', lambda *a, **k: pytest.fail('pip ran'))
    assert wheels.fetch_wheel('some-package==1.0.1', str(tmp_path)).endswith('some_package-1.0.1-py3-none-any.whl')


def test_a_failed_download_says_why_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(wheels.subprocess, 'run', lambda *a, **k: subprocess.CompletedProcess(
        a[0], 1, '', 'ERROR: No matching distribution found for some-package==9.9'))
    with pytest.raises(RuntimeError, match=r'(?s)could not download some-package==9\.9.*No matching distribution'
                                           r'.*Put the wheel into'):
        wheels.fetch_wheel('some-package==9.9', str(tmp_path / 'cache'))
