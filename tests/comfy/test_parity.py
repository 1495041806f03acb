"""The patched ComfyUI models against the independent diffusers reference, on the same tiny weights (fp32).

The pack runs through a real ComfyUI sampler call (wrappers, CFG batching, block replacements); the reference is
diffusers' own Flux / SD3 blocks with peft LoRA and the official per-instance loop. Both get the same noisy
latent, conditioning and per-instance pooled text; the denoised rows are compared, and for Flux every block's
output too.
"""
import pytest
import torch
from einops import rearrange

from tools import official_weights, tiny_models
from tools.pack_nodes import apply, encode
from reference_flux import ReferenceFlux
from reference_sd3 import ReferenceSD3
from parity_cases import CASES, HEIGHT, WIDTH, layout_source, relative_error
from tools.sampling import GroundingProbe, flux_conditioning, replay, text_conditioning

PARITY = 1e-5


def grounded(pack, stock_model, weights_folder, clip, boxes):
    """(layout, encoded layout, patched model) through the pack's nodes, grounded on every step."""
    layout = pack.instanceassemble_core.layout.parse_layout(layout_source(boxes))
    encoded = encode(pack, clip, layout)
    weights = pack.instanceassemble_core.weights.load_weights(weights_folder)
    return layout, encoded, apply(pack, stock_model, weights, encoded, grounding_ratio=1.0)


def one_step(model, positive, negative, x, sigma, cfg):
    """Denoised rows of one real sampler evaluation, with ComfyUI's cond_or_uncond order."""
    probe = GroundingProbe()
    replay(probe.attach(model), positive, negative, torch.zeros_like(x), torch.tensor([sigma, 0.0]), [x], cfg=cfg)
    (_, grounded, cond_or_uncond), = probe.calls
    assert grounded
    return probe.outputs[0], cond_or_uncond


class BlockRecorder:
    """Records what each block replacement returns, by wrapping the entries of the patched model's options."""

    def __init__(self, model):
        self.outputs = {}
        replacements = model.model_options["transformer_options"]["patches_replace"]["dit"]
        for key, patch in list(replacements.items()):
            replacements[key] = self._recording(key, patch)

    def _recording(self, key, patch):
        def record(args, extra):
            out = patch(args, extra)
            self.outputs[key] = {name: value.clone() for name, value in out.items() if value is not None}
            return out
        return record


@pytest.fixture(scope="module")
def flux_setup(tmp_path_factory):
    base = tiny_models.tiny_flux_state_dict()
    lora_sd, layout_sd = official_weights.make_official_weights("flux", 64, 64, 4, 2, seed=21)
    folder = official_weights.write_official_folder(tmp_path_factory.mktemp("parity_flux"), lora_sd, layout_sd)
    return base, ReferenceFlux(base, tiny_models.FLUX_TINY, lora_sd, layout_sd), folder


@pytest.mark.parametrize("case", CASES)
def test_flux_matches_reference(pack, flux_setup, flux_clip, case):
    base, reference, folder = flux_setup
    layout, encoded, patched = grounded(pack, tiny_models.tiny_flux_patcher(state_dict=base), folder, flux_clip,
                                        CASES[case])
    blocks = BlockRecorder(patched)
    positive = flux_conditioning(flux_clip, "a scene")
    sigma = 0.8
    x = torch.randn(1, 16, HEIGHT // 8, WIDTH // 8, generator=torch.Generator().manual_seed(4))
    denoised, _ = one_step(patched, positive, positive, x, sigma, cfg=1.0)

    cond, pooled = positive[0][0], positive[0][1]["pooled_output"]
    rows, cols = HEIGHT // 16, WIDTH // 16
    img_ids = torch.zeros(1, rows * cols, 3)
    img_ids[..., 1] = (torch.arange(rows * cols) // cols).float()
    img_ids[..., 2] = (torch.arange(rows * cols) % cols).float()
    velocity, reference_blocks = reference(
        img=rearrange(x, "b c (h ph) (w pw) -> b (h w) (c ph pw)", ph=2, pw=2), img_ids=img_ids, txt=cond,
        txt_ids=torch.zeros(1, cond.shape[1], 3), timesteps=torch.tensor([sigma]), y=pooled,
        guidance=torch.tensor([3.5]), boxes_xyxy=[[list(i.bbox) for i in layout.instances]],
        instance_pooled=[encoded.pooled], image_size=(WIDTH, HEIGHT), return_block_outputs=True)
    expected = x - sigma * rearrange(velocity, "b (h w) (c ph pw) -> b c (h ph) (w pw)", h=rows, ph=2, pw=2)

    for (kind, index), out in blocks.outputs.items():
        if kind == "double_block":
            assert relative_error(out["img"], reference_blocks[f"double.{index}"][0]) <= PARITY, (kind, index)
        else:
            image_part = out["img"][:, cond.shape[1]:]
            assert relative_error(image_part, reference_blocks[f"single.{index}"]) <= PARITY, (kind, index)
    assert set(blocks.outputs) == {("double_block", 0), ("double_block", 3), ("single_block", 0)}
    assert relative_error(denoised, expected) <= PARITY


@pytest.fixture(scope="module")
def sd3_setup(tmp_path_factory):
    base = tiny_models.tiny_sd3_state_dict(depth=2)
    lora_sd, layout_sd = official_weights.make_official_weights("sd3", 128, 128, 2, seed=22)
    folder = official_weights.write_official_folder(tmp_path_factory.mktemp("parity_sd3"), lora_sd, layout_sd)
    return base, ReferenceSD3(base, lora_sd, layout_sd), folder


@pytest.mark.parametrize("case", CASES)
def test_sd3_cfg_batch_matches_reference(pack, sd3_setup, sd3_clip, case):
    base, reference, folder = sd3_setup
    layout, encoded, patched = grounded(pack, tiny_models.tiny_sd3_patcher(state_dict=base), folder, sd3_clip,
                                        CASES[case])
    positive, negative = text_conditioning(sd3_clip, "a scene"), text_conditioning(sd3_clip, "")
    sigma = 0.8
    x = torch.randn(1, 16, HEIGHT // 8, WIDTH // 8, generator=torch.Generator().manual_seed(5))
    denoised, cond_or_uncond = one_step(patched, positive, negative, x, sigma, cfg=7.0)
    assert sorted(cond_or_uncond) == [0, 1]

    conds = {0: positive, 1: negative}
    boxes = [list(i.bbox) for i in layout.instances]
    output = reference(
        x=x.repeat(2, 1, 1, 1), timesteps=torch.tensor([sigma * 1000] * 2),
        context=torch.cat([conds[kind][0][0] for kind in cond_or_uncond]),
        y=torch.cat([conds[kind][0][1]["pooled_output"] for kind in cond_or_uncond]),
        boxes_xyxy=[boxes if kind == 0 else None for kind in cond_or_uncond],
        instance_pooled=[encoded.pooled if kind == 0 else None for kind in cond_or_uncond],
        image_size=(WIDTH, HEIGHT))
    expected = x - sigma * output
    assert relative_error(denoised, expected) <= PARITY
