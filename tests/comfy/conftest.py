"""Fixtures of the ComfyUI tier: tiny random-weight models built through ComfyUI's own classes, tiny weights in
the official file layout, and layouts encoded by the pack's nodes."""
import pytest

import comfyui_version
from tools import official_weights, pack_nodes, tiny_models

# Behaviour only 2026 ComfyUI has (Flux.2 in the Flux class, the multi-GPU nodes) is tested on those backends.
COMFYUI_VERSION = tuple(int(part) for part in comfyui_version.__version__.split(".")[:2])
collect_ignore = [] if COMFYUI_VERSION >= (0, 4) else ["test_comfyui_2026.py"]

FLUX_CFG = tiny_models.FLUX_TINY
SD3_DEPTH = 2


@pytest.fixture(scope="session")
def flux_weights_folder(tmp_path_factory):
    lora_sd, layout_sd = official_weights.make_official_weights(
        "flux", FLUX_CFG["hidden_size"], 64, FLUX_CFG["depth"], FLUX_CFG["depth_single_blocks"], seed=11)
    return official_weights.write_official_folder(tmp_path_factory.mktemp("flux_weights"), lora_sd, layout_sd)


@pytest.fixture(scope="session")
def sd3_weights_folder(tmp_path_factory):
    lora_sd, layout_sd = official_weights.make_official_weights("sd3", 64 * SD3_DEPTH, 128, SD3_DEPTH, seed=12)
    return official_weights.write_official_folder(tmp_path_factory.mktemp("sd3_weights"), lora_sd, layout_sd)


@pytest.fixture(scope="session")
def flux_weights(pack, flux_weights_folder):
    return pack.instanceassemble_core.weights.load_weights(flux_weights_folder)


@pytest.fixture(scope="session")
def sd3_weights(pack, sd3_weights_folder):
    return pack.instanceassemble_core.weights.load_weights(sd3_weights_folder)


@pytest.fixture(scope="session")
def flux_clip():
    return tiny_models.tiny_clip("flux")


@pytest.fixture(scope="session")
def sd3_clip():
    return tiny_models.tiny_clip("sd3")


@pytest.fixture
def flux_model():
    return tiny_models.tiny_flux_patcher()


@pytest.fixture
def sd3_model():
    return tiny_models.tiny_sd3_patcher(depth=SD3_DEPTH)


@pytest.fixture(scope="session")
def layout(pack):
    return pack.instanceassemble_core.layout.parse_layout(pack_nodes.LAYOUT_256x128)
