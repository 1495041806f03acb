"""Test set-up shared by every tier.

ComfyUI is required, never faked: when it cannot be found the whole run stops with an error.
pyproject's ``pythonpath`` puts the repository root, ``tests/support`` and ``tests/e2e`` on ``sys.path``;
``import_comfyui`` then puts ComfyUI ahead of them (its ``nodes.py`` must shadow this pack's ``nodes/`` folder).
``tests/support`` holds the references the tests compare with (the official code's math, diffusers hosts); the kit the
tests share with bench/ and the runner (tiny models, synthetic official weights, nodes and samplers in process) is
in ``tools/``.
"""
import tempfile

import pytest

from tools.comfyui_path import find_comfyui, import_comfyui, import_pack

if find_comfyui() is None:
    pytest.exit("ComfyUI not found (COMFYUI_PATH, parent custom_nodes/, ~/comfy/ComfyUI): every test tier needs it.",
                returncode=3)
import_comfyui(cpu=True)

import folder_paths  # noqa: E402

# Loading the pack copies the example inputs into ComfyUI's input folder (nodes/example_inputs.py): in the tests that
# folder is one of this session's, removed at exit, so ComfyUI's own input/ is never written.
SESSION_INPUT = tempfile.TemporaryDirectory(prefix="instanceassemble_test_input_")
folder_paths.set_input_directory(SESSION_INPUT.name)


@pytest.fixture(scope="session")
def pack():
    """This repository imported as a ComfyUI custom-node package (``comfyui_instanceassemble``)."""
    return import_pack()
