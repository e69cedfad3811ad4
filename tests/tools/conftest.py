import sys
from pathlib import Path

# The converters' modules sit beside their scripts in tools/, outside the package; run as scripts they find
# each other through the script's folder on sys.path, and the tests import them the same way.
TOOLS = Path(__file__).resolve().parents[2] / 'tools'
for folder in ('dataset_converters', 'model_converters', 'misc'):
    sys.path.insert(0, str(TOOLS / folder))
