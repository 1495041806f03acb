"""Tiny random-weight Flux / SD3 diffusion models and CLIP encoders for the tests (CPU, fp32, no downloads).

The builders live in ``tools/tiny_models.py`` (the headless runner's ``--tiny`` run uses them too); this module
keeps the tests' import name.
"""
from tools.tiny_models import (FLUX_TINY, TINY_TEXT_ENCODERS, tiny_clip, tiny_flux_patcher,  # noqa: F401
                               tiny_flux_state_dict, tiny_sd3_patcher, tiny_sd3_state_dict)
