"""Synthetic weights in the official file layout. The builders live in ``tools/official_weights.py`` (the
headless runner's ``--tiny`` run uses them too); this module keeps the tests' import name."""
from tools.official_weights import (JOINT_ACTIVE_MODULES, LAYOUT_FILE_NAME, LORA_FILE_NAME,  # noqa: F401
                                    SD3_LAST_BLOCK_ACTIVE_MODULES, SINGLE_ACTIVE_MODULES, inactive_lora_modules,
                                    layout_block_names, make_official_weights, write_official_folder)
