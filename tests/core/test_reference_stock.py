"""The diffusers-based references: stock parity with ComfyUI's own models, reference geometry, and sensitivity of
the layout branch to every weight and input it must depend on (and insensitivity to LoRA it must never use)."""
import copy

import pytest
import torch

import reference_layout as rl
from tools.official_weights import make_official_weights
from reference_flux import ReferenceFlux
from reference_sd3 import ReferenceSD3
from tools.tiny_models import FLUX_TINY, tiny_flux_patcher, tiny_flux_state_dict, tiny_sd3_patcher, tiny_sd3_state_dict

STOCK_TOLERANCE = 1e-5
SENSITIVITY = 1e-4
IMAGE_SIZE = (96, 64)  # token grid 4 x 6
BOXES = [(0, 0, 40, 30), (20, 10, 90, 60), (48, 16, 96, 64)]
SD3_DEPTH = 2
SD3_HIDDEN = 64 * SD3_DEPTH


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def flux_image_ids(batch, rows, cols):
    """ComfyUI's Flux image ids [B, rows·cols, 3]: (0, row, col), row-major."""
    ids = torch.zeros(batch, rows * cols, 3)
    ids[..., 1] = (torch.arange(rows * cols) // cols).float()
    ids[..., 2] = (torch.arange(rows * cols) % cols).float()
    return ids


@pytest.fixture(scope="module")
def flux():
    base = tiny_flux_state_dict()
    lora_sd, layout_sd = make_official_weights("flux", FLUX_TINY["hidden_size"], FLUX_TINY["vec_in_dim"],
                                               FLUX_TINY["depth"], FLUX_TINY["depth_single_blocks"])
    g = torch.Generator().manual_seed(10)
    batch, text_len = 2, 5
    inputs = dict(
        img=torch.randn(batch, 24, 64, generator=g), img_ids=flux_image_ids(batch, 4, 6),
        txt=torch.randn(batch, text_len, FLUX_TINY["context_in_dim"], generator=g),
        txt_ids=torch.zeros(batch, text_len, 3), timesteps=torch.tensor([0.7, 0.4]),
        y=torch.randn(batch, FLUX_TINY["vec_in_dim"], generator=g), guidance=torch.tensor([3.5, 2.0]))
    layout = dict(boxes_xyxy=[BOXES, BOXES[:1]], image_size=IMAGE_SIZE,
                  instance_pooled=[torch.randn(3, FLUX_TINY["vec_in_dim"], generator=g),
                                   torch.randn(1, FLUX_TINY["vec_in_dim"], generator=g)])
    return dict(base=base, lora=lora_sd, layout_sd=layout_sd, inputs=inputs, layout=layout,
                reference=ReferenceFlux(base, FLUX_TINY, lora_sd, layout_sd))


@pytest.fixture(scope="module", params=[None, 8], ids=["computed_pos_embed", "pos_embed_table"])
def sd3(request):
    base = tiny_sd3_state_dict(depth=SD3_DEPTH, pos_embed_max=request.param)
    lora_sd, layout_sd = make_official_weights("sd3", SD3_HIDDEN, 128, SD3_DEPTH)
    g = torch.Generator().manual_seed(11)
    batch = 2
    inputs = dict(x=torch.randn(batch, 16, 8, 12, generator=g), timesteps=torch.tensor([700.0, 700.0]),
                  context=torch.randn(batch, 7, 4096, generator=g), y=torch.randn(batch, 128, generator=g))
    layout = dict(boxes_xyxy=[None, BOXES], image_size=IMAGE_SIZE,
                  instance_pooled=[None, torch.randn(3, 128, generator=g)])
    return dict(base=base, lora=lora_sd, layout_sd=layout_sd, inputs=inputs, layout=layout,
                reference=ReferenceSD3(base, lora_sd, layout_sd))


def test_flux_reference_at_scale_zero_is_comfyui_stock_flux(flux):
    diffusion_model = tiny_flux_patcher(FLUX_TINY, flux["base"]).model.diffusion_model
    with torch.no_grad():
        stock = diffusion_model.forward_orig(**{k: v.clone() for k, v in flux["inputs"].items()})
    reference = flux["reference"]
    assert relative_error(reference(**flux["inputs"], **flux["layout"], layout_scale=0.0), stock) <= STOCK_TOLERANCE
    grounded = reference(**flux["inputs"], **flux["layout"], layout_scale=1.0)
    for row in range(2):
        assert relative_error(grounded[row], stock[row]) > 1e-2


def test_sd3_reference_at_scale_zero_is_comfyui_stock_mmdit(sd3):
    diffusion_model = tiny_sd3_patcher(sd3["base"]).model.diffusion_model
    with torch.no_grad():
        stock = diffusion_model(sd3["inputs"]["x"], sd3["inputs"]["timesteps"], context=sd3["inputs"]["context"],
                                y=sd3["inputs"]["y"])
    reference = sd3["reference"]
    assert relative_error(reference(**sd3["inputs"], **sd3["layout"], layout_scale=0.0), stock) <= STOCK_TOLERANCE
    grounded = reference(**sd3["inputs"], **sd3["layout"], layout_scale=1.0)
    assert relative_error(grounded[1], stock[1]) > 1e-2
    assert relative_error(grounded[0], stock[0]) > 1e-2  # uncond row: LoRA modulation + extra FFN pass only


def test_reference_geometry_token_masks_and_layout_ids():
    width, height = IMAGE_SIZE
    boxes, masks = rl.dense_boxes(BOXES + [(50, 20, 52, 22)], width, height, max_objs=6)
    assert masks.tolist() == [1, 1, 1, 1, 0, 0]
    assert boxes[0, :12].tolist() == pytest.approx([0, 0, 0, 0.09375, 0, 0.1875, 0, 0.28125, 0, 0.375, 0, 0.46875])
    grid = rl.token_grid(width, height)
    assert grid == (4, 6)
    indices = [idx.tolist() for idx in rl.token_indices(boxes, *grid)]
    assert indices[0] == [0, 1]
    assert indices[1] == [1, 2, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16]
    assert indices[2] == [9, 10, 11, 15, 16, 17, 21, 22, 23]
    assert indices[3] == [9]  # degenerate 1x1 fix
    assert indices[4] == indices[5] == []
    ids = rl.layout_token_ids(boxes, *grid)
    assert ids.tolist() == [[0, 0.5, 1.0], [0, 1.5, 3.0], [0, 2.5, 4.5], [0, 1.0, 3.0], [0, 0, 0], [0, 0, 0]]


def test_reference_geometry_reads_the_recomputed_corner():
    # x2 = 80 px sits on a token edge of a 768-px-wide image (48 tokens), but the recomputed corner
    # x1 + 5·fl32(Δx) falls just below it, so the official mask ends one column earlier.
    boxes, _ = rl.dense_boxes([(0, 0, 80, 64)], 768, 64, max_objs=1)
    assert boxes[0, 70].item() < 80 / 768
    assert rl.token_indices(boxes, 4, 48)[0].tolist() == [row * 48 + col for row in range(4) for col in range(4)]


def test_reference_lora_scaling_follows_the_official_loaders(flux, sd3):
    def scalings(reference, path):
        layer = reference.transformer.get_submodule(path)
        with rl.lora_enabled((layer,)):
            on = float(layer.scaling["default_0"])
        return on, float(layer.scaling["default_0"])

    assert scalings(flux["reference"], "transformer_blocks.3.attn.to_q") == (2.0, 0.0)  # alpha 2r / r
    lora_without_alpha = {k: v for k, v in flux["lora"].items() if not k.endswith(".alpha")}
    without_alpha = ReferenceFlux(flux["base"], FLUX_TINY, lora_without_alpha, flux["layout_sd"])
    assert scalings(without_alpha, "single_transformer_blocks.0.proj_out") == (1.0, 0.0)
    assert scalings(sd3["reference"], "transformer_blocks.1.norm1_context.linear") == (1.0, 0.0)  # alphas ignored


def _perturbed(state_dict, key):
    changed = copy.copy(state_dict)
    changed[key] = state_dict[key] + 0.5 * torch.randn(state_dict[key].shape, generator=torch.Generator().manual_seed(7))
    return changed


FLUX_SENSITIVE = [("lora", "transformer.transformer_blocks.3.attn.add_k_proj.lora_B.weight"),
                  ("lora", "transformer.transformer_blocks.0.ff_context.net.2.lora_B.weight"),
                  ("lora", "transformer.single_transformer_blocks.0.proj_out.lora_B.weight"),
                  ("layout_sd", "transformer_blocks.3.layout_forward.weight"),
                  ("layout_sd", "single_transformer_blocks.0.layout_forward.weight"),
                  ("layout_sd", "layout_net.linears.linear_1.weight")]
FLUX_INERT = ["transformer.transformer_blocks.1.attn.to_q.lora_B.weight",
              "transformer.transformer_blocks.0.ff.net.0.proj.lora_B.weight",
              "transformer.single_transformer_blocks.1.attn.to_q.lora_B.weight",
              "transformer.norm_out.linear.lora_B.weight"]


@pytest.mark.parametrize("kind,key", FLUX_SENSITIVE)
def test_flux_reference_depends_on_layout_weights(flux, kind, key):
    weights = dict(lora=flux["lora"], layout_sd=flux["layout_sd"])
    weights[kind] = _perturbed(weights[kind], key)
    changed = ReferenceFlux(flux["base"], FLUX_TINY, weights["lora"], weights["layout_sd"])
    before = flux["reference"](**flux["inputs"], **flux["layout"])
    assert relative_error(changed(**flux["inputs"], **flux["layout"]), before) > SENSITIVITY


@pytest.mark.parametrize("key", FLUX_INERT)
def test_flux_reference_ignores_never_active_lora(flux, key):
    changed = ReferenceFlux(flux["base"], FLUX_TINY, _perturbed(flux["lora"], key), flux["layout_sd"])
    before = flux["reference"](**flux["inputs"], **flux["layout"])
    assert torch.equal(changed(**flux["inputs"], **flux["layout"]), before)


def test_flux_reference_depends_on_box_order_and_carries_the_layout_stream(flux):
    reference = flux["reference"]
    before, blocks = reference(**flux["inputs"], **flux["layout"], return_block_outputs=True)
    swapped = dict(flux["layout"], boxes_xyxy=[[BOXES[1], BOXES[0], BOXES[2]], BOXES[:1]])
    assert relative_error(reference(**flux["inputs"], **swapped), before) > SENSITIVITY
    assert sorted(blocks) == ["double.0", "double.1", "double.2", "double.3", "single.0", "single.1"]
    assert blocks["double.1"][2] is blocks["double.0"][2]  # non-layout blocks pass the stream through
    assert not torch.equal(blocks["double.3"][2], blocks["double.0"][2])
    assert blocks["single.0"].shape == blocks["double.3"][0].shape


SD3_SENSITIVE = [("lora", "transformer.transformer_blocks.0.attn.add_q_proj.lora_B.weight"),
                 ("lora", "transformer.transformer_blocks.1.norm1_context.linear.lora_B.weight"),
                 ("lora", "transformer.transformer_blocks.1.ff.net.2.lora_B.weight"),
                 ("layout_sd", "transformer_blocks.1.layout_forward.weight"),
                 ("layout_sd", "layout_net.text_embedder.linear_1.weight")]


@pytest.mark.parametrize("kind,key", SD3_SENSITIVE)
def test_sd3_reference_depends_on_layout_weights(sd3, kind, key):
    weights = dict(lora=sd3["lora"], layout_sd=sd3["layout_sd"])
    weights[kind] = _perturbed(weights[kind], key)
    changed = ReferenceSD3(sd3["base"], weights["lora"], weights["layout_sd"])
    before = sd3["reference"](**sd3["inputs"], **sd3["layout"])
    assert relative_error(changed(**sd3["inputs"], **sd3["layout"])[1], before[1]) > SENSITIVITY


def test_sd3_reference_ignores_never_active_lora(sd3):
    key = "transformer.transformer_blocks.0.ff.net.0.proj.lora_B.weight"
    changed = ReferenceSD3(sd3["base"], _perturbed(sd3["lora"], key), sd3["layout_sd"])
    before = sd3["reference"](**sd3["inputs"], **sd3["layout"])
    assert torch.equal(changed(**sd3["inputs"], **sd3["layout"]), before)


def test_sd3_reference_depends_on_box_order(sd3):
    reference = sd3["reference"]
    before, blocks = reference(**sd3["inputs"], **sd3["layout"], return_block_outputs=True)
    swapped = dict(sd3["layout"], boxes_xyxy=[None, [BOXES[1], BOXES[0], BOXES[2]]])
    after = reference(**sd3["inputs"], **swapped)
    assert relative_error(after[1], before[1]) > SENSITIVITY
    assert torch.equal(after[0], before[0])  # the uncond row never sees the boxes
    assert blocks[f"double.{SD3_DEPTH - 1}"][1] is None and blocks[f"double.{SD3_DEPTH - 1}"][2] is None


def test_references_accept_a_box_without_image_tokens(flux, sd3):
    outside = (200, 200, 210, 210)
    flux_layout = dict(flux["layout"], boxes_xyxy=[BOXES + [outside], BOXES[:1]],
                       instance_pooled=[torch.cat([flux["layout"]["instance_pooled"][0]] * 2)[:4],
                                        flux["layout"]["instance_pooled"][1]])
    assert torch.isfinite(flux["reference"](**flux["inputs"], **flux_layout)).all()
    sd3_layout = dict(sd3["layout"], boxes_xyxy=[None, BOXES + [outside]],
                      instance_pooled=[None, torch.cat([sd3["layout"]["instance_pooled"][1]] * 2)[:4]])
    assert torch.isfinite(sd3["reference"](**sd3["inputs"], **sd3_layout)).all()
