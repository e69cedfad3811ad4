"""The mmdet-sniper command (mmdet_sniper.cli) finds the tools and configs the package carries."""
import sys
from pathlib import Path

import pytest

from mmdet_sniper.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(monkeypatch, capsys):
    """main() in this process, with sys.argv and sys.path put back after: a tool runs as __main__."""
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    monkeypatch.setattr(sys, 'path', list(sys.path))

    def run(*args):
        try:
            code = main(list(args))
        except SystemExit as stop:
            code = stop.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_it_lists_the_tools(cli):
    code, out, _ = cli()
    assert code == 0
    tools = out.rpartition('tools: ')[2].split()
    assert {'train', 'test', 'dist_train', 'extract_proposals', 'configure_sniper'} <= set(tools)


def test_configs_names_the_folder_of_sniper_configs(cli):
    code, out, _ = cli('configs')
    assert code == 0
    folder = Path(out.strip())
    assert sorted(p.name for p in folder.glob('*.py')) == sorted(p.name for p in (ROOT / 'configs').glob('*.py'))


@pytest.mark.parametrize('name', ['nosuch', 'train.py'])
def test_an_unknown_tool_is_refused_with_the_list(cli, name):
    code, _, err = cli(name, '--help')
    message = str(code) + err  # sys.exit(message) carries the message as its code
    assert code not in (0, None)
    assert f'no tool {name!r}' in message and 'train' in message.split()


def test_a_python_tool_runs_with_its_arguments(cli):
    code, out, _ = cli('train', '--help')
    assert code == 0 and 'train config file path' in out
