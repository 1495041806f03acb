"""The core's batched branch against the official per-instance loop, inside the same diffusers model (fp32).

Both run diffusers' own Flux / SD3 blocks and the same official-format weights; only the layout branch differs:
the reference loops over instances and re-projects each one, the core (hosted by ``diffusers_host``) does per-token
work once and attends all instances in padded chunks. Every block's output and the final output are compared.
"""
import pytest
import torch

from instanceassemble_core.branch import InstanceBranch
from instanceassemble_core.layout import parse_layout
from instanceassemble_core.weights import load_weights, save_combined

from tools import official_weights, tiny_models
from diffusers_host import CoreOnDiffusers
from parity_cases import CASES, HEIGHT, WIDTH, layout_source, relative_error
from reference_flux import ReferenceFlux
from reference_sd3 import ReferenceSD3

PARITY = 1e-5
GRID = (HEIGHT // 16, WIDTH // 16)


def core_branch(family, lora_sd, layout_sd, tmp_path):
    save_combined(lora_sd, layout_sd, tmp_path / f"{family}.safetensors")
    return InstanceBranch(load_weights(tmp_path / f"{family}.safetensors"))


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    cfg = tiny_models.FLUX_TINY
    base = tiny_models.tiny_flux_state_dict()
    lora_sd, layout_sd = official_weights.make_official_weights("flux", 64, 64, cfg["depth"],
                                                                cfg["depth_single_blocks"], seed=31)
    return (ReferenceFlux(base, cfg, lora_sd, layout_sd),
            core_branch("flux", lora_sd, layout_sd, tmp_path_factory.mktemp("core_flux")))


def flux_inputs(batch, seed):
    g = torch.Generator().manual_seed(seed)
    rows, cols = GRID
    img_ids = torch.zeros(batch, rows * cols, 3)
    img_ids[..., 1] = (torch.arange(rows * cols) // cols).float()
    img_ids[..., 2] = (torch.arange(rows * cols) % cols).float()
    return dict(img=torch.randn(batch, rows * cols, 64, generator=g), img_ids=img_ids,
                txt=torch.randn(batch, 6, 48, generator=g), txt_ids=torch.zeros(batch, 6, 3),
                timesteps=torch.full((batch,), 0.6), y=torch.randn(batch, 64, generator=g),
                guidance=torch.full((batch,), 3.5))


@pytest.mark.parametrize("case", CASES)
def test_flux_core_matches_official_loop(flux, case):
    reference, branch = flux
    layout = parse_layout(layout_source(CASES[case]))
    pooled = torch.randn(len(layout.instances), 64, generator=torch.Generator().manual_seed(7))
    boxes = [list(i.bbox) for i in layout.instances]
    common = dict(flux_inputs(1, 8), boxes_xyxy=[boxes], instance_pooled=[pooled], image_size=(WIDTH, HEIGHT),
                  return_block_outputs=True)
    expected, expected_blocks = reference(**common)
    core = CoreOnDiffusers(branch, [layout], [pooled], GRID, axes_dim=tiny_models.FLUX_TINY["axes_dim"])
    actual, actual_blocks = reference(**common, branch=core)
    for name, expected_block in expected_blocks.items():
        expected_img = expected_block[0] if isinstance(expected_block, tuple) else expected_block
        actual_img = actual_blocks[name][0] if isinstance(expected_block, tuple) else actual_blocks[name]
        assert relative_error(actual_img, expected_img) <= PARITY, name
    assert relative_error(actual, expected) <= PARITY
    assert relative_error(expected, reference(**{**common, "return_block_outputs": False}, layout_scale=0)) > 1e-2


@pytest.fixture(scope="module")
def sd3(tmp_path_factory):
    base = tiny_models.tiny_sd3_state_dict(depth=2)
    lora_sd, layout_sd = official_weights.make_official_weights("sd3", 128, 128, 2, seed=32)
    return (ReferenceSD3(base, lora_sd, layout_sd),
            core_branch("sd3", lora_sd, layout_sd, tmp_path_factory.mktemp("core_sd3")))


@pytest.mark.parametrize("case", CASES)
def test_sd3_core_matches_official_loop_on_a_cfg_batch(sd3, case):
    reference, branch = sd3
    layout = parse_layout(layout_source(CASES[case]))
    g = torch.Generator().manual_seed(9)
    pooled = torch.randn(len(layout.instances), 128, generator=g)
    boxes = [list(i.bbox) for i in layout.instances]
    common = dict(x=torch.randn(2, 16, HEIGHT // 8, WIDTH // 8, generator=g), timesteps=torch.tensor([600.0, 600.0]),
                  context=torch.randn(2, 7, 4096, generator=g), y=torch.randn(2, 128, generator=g),
                  boxes_xyxy=[None, boxes], instance_pooled=[None, pooled], image_size=(WIDTH, HEIGHT),
                  return_block_outputs=True)  # [uncond, cond], as the official SD3 pipeline batches them
    expected, expected_blocks = reference(**common)
    actual, actual_blocks = reference(**common, branch=CoreOnDiffusers(branch, [None, layout], [None, pooled], GRID))
    for name, (expected_img, _, _) in expected_blocks.items():
        assert relative_error(actual_blocks[name][0], expected_img) <= PARITY, name
    assert relative_error(actual, expected) <= PARITY
