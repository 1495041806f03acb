"""pytest: collect this folder as a plain directory, not as a package.

The repository root is a ComfyUI custom node package (``__init__.py`` with relative imports), and its folder is named
after the repository (``ComfyUI-InstanceAssemble``: not a Python name) or whatever a clone is called; pytest would
import that ``__init__.py`` as a package named after the folder. The tests import the pack the way ComfyUI does
(``tools.comfyui_path.import_pack``)."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def pytest_collect_directory(path, parent):
    if path == ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
