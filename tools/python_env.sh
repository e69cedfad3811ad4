# shellcheck shell=bash
# Sourced by the shell tools (bash): PYTHON is $PYTHON if set, else this checkout's .venv/bin/python
# (what `make env` creates) if there is one, else python. A Python that cannot import mmdet_sniper
# with mmdet stops the tool here with what to do, rather than in a ModuleNotFoundError that looks
# like a broken install. Checked as the tools run (PYTHONSAFEPATH: not from the current folder), so
# a tool that puts the checkout on PYTHONPATH sources this after.
sniper_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$sniper_root/.venv/bin/python" ]; then
        PYTHON=$sniper_root/.venv/bin/python
    else
        PYTHON=python
    fi
fi
export PYTHON
if ! sniper_import_error=$(PYTHONSAFEPATH=1 "$PYTHON" -c 'import mmdet_sniper.engine.launch' 2>&1); then
    {
        echo "$(basename "$0"): $PYTHON cannot import mmdet_sniper: ${sniper_import_error##*$'\n'}"
        echo "Run \`make env\` in $sniper_root (the tools then use its .venv by themselves), or set PYTHON to a"
        echo "Python where mmdet-sniper is installed (pip install --no-build-isolation -e $sniper_root)."
    } >&2
    exit 1
fi
