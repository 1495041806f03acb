"""Flux in ComfyUI: the patched model through real samplers, grounding, style LoRAs, and the input model."""
import copy

import pytest
import torch
from safetensors.torch import save_file

import comfy.samplers
import folder_paths
import nodes as comfy_nodes
from tools.pack_nodes import apply, encode, latent_for
from tools.sampling import GroundingProbe, flux_conditioning, replay, sample, trajectory


@pytest.fixture
def encoded(pack, flux_clip, layout):
    return encode(pack, flux_clip, layout)


@pytest.fixture
def positive(flux_clip):
    return flux_conditioning(flux_clip, "a cat and a dog on grass")


def test_ksampler_node_runs_and_follows_the_layout(pack, flux_model, flux_weights, encoded, positive, layout):
    patched = apply(pack, flux_model, flux_weights, encoded, grounding_ratio=0.5)
    latent = {"samples": latent_for(layout)}
    stock = comfy_nodes.KSampler().sample(flux_model, 7, 4, 1.0, "euler", "simple", positive, positive, latent)[0]
    grounded = comfy_nodes.KSampler().sample(patched, 7, 4, 1.0, "euler", "simple", positive, positive, latent)[0]
    assert grounded["samples"].shape == (1, 16, 16, 32)
    assert torch.isfinite(grounded["samples"]).all()
    assert (grounded["samples"] - stock["samples"]).abs().max() > 1e-2


def test_branch_runs_on_exactly_the_grounded_steps(pack, flux_model, flux_weights, encoded, positive, layout):
    steps, ratio = 10, 0.3
    probe = GroundingProbe()
    patched = probe.attach(apply(pack, flux_model, flux_weights, encoded, grounding_ratio=ratio))
    sigmas = comfy.samplers.calculate_sigmas(flux_model.get_model_object("model_sampling"), "simple", steps)
    latent = latent_for(layout)
    inputs, _ = trajectory(patched, positive, positive, latent, sigmas)
    assert [grounded for _, grounded, _ in probe.calls] == [True] * 3 + [False] * 7

    patched_out = replay(patched, positive, positive, latent, sigmas, inputs)
    stock_out = replay(flux_model, positive, positive, latent, sigmas, inputs)
    for step in range(3):
        assert (patched_out[step] - stock_out[step]).abs().max() > 1e-3, step
    for step in range(3, steps):
        assert torch.equal(patched_out[step], stock_out[step]), step


@pytest.mark.parametrize("sampler", ["heun", "dpmpp_2s_ancestral", "dpm_2"])
def test_every_evaluation_of_a_grounded_step_is_grounded(pack, flux_model, flux_weights, encoded, positive, layout,
                                                         sampler):
    probe = GroundingProbe()
    patched = probe.attach(apply(pack, flux_model, flux_weights, encoded, grounding_ratio=0.5))
    sample(patched, positive, positive, latent_for(layout), steps=4, sampler=sampler)
    # two evaluations per step, one in the last step (whose next sigma is 0): 2 + 2 grounded, then 2 + 1
    assert [grounded for _, grounded, _ in probe.calls] == [True] * 4 + [False] * 3


def test_ksampler_advanced_windows_count_their_own_steps(pack, flux_model, flux_weights, encoded, positive, layout):
    probe = GroundingProbe()
    patched = probe.attach(apply(pack, flux_model, flux_weights, encoded, grounding_ratio=0.5))
    latent = {"samples": latent_for(layout)}
    advanced = comfy_nodes.KSamplerAdvanced()
    first = advanced.sample(patched, "enable", 0, 6, 1.0, "euler", "simple", positive, positive, latent,
                            0, 4, "enable")[0]
    assert [grounded for _, grounded, _ in probe.calls] == [True, True, False, False]
    probe.calls.clear()
    advanced.sample(patched, "disable", 0, 6, 1.0, "euler", "simple", positive, positive, first, 4, 10000, "disable")
    assert [grounded for _, grounded, _ in probe.calls] == [True, False]


def test_a_layout_without_boxes_runs_the_branch_feed_forward_only(pack, flux_model, flux_weights, flux_clip, positive,
                                                                  layout):
    empty = pack.instanceassemble_core.layout.parse_layout({"width": 256, "height": 128, "annos": []})
    patched = apply(pack, flux_model, flux_weights, encode(pack, flux_clip, empty), grounding_ratio=1.0)
    out = sample(patched, positive, positive, latent_for(layout), steps=2)
    assert torch.isfinite(out).all()
    assert (out - sample(flux_model, positive, positive, latent_for(layout), steps=2)).abs().max() > 1e-3


def test_zero_scale_or_ratio_is_the_stock_model(pack, flux_model, flux_weights, encoded):
    assert apply(pack, flux_model, flux_weights, encoded, layout_scale=0.0) is flux_model
    assert apply(pack, flux_model, flux_weights, encoded, grounding_ratio=0.0) is flux_model


def _flux_style_lora(model, tmp_path):
    """A ComfyUI-format LoRA on every double block's image qkv and the single blocks' linear1."""
    generator = torch.Generator().manual_seed(5)
    lora = {}
    diffusion_model = model.get_model_object("diffusion_model")
    targets = [f"double_blocks.{i}.img_attn.qkv" for i in range(len(diffusion_model.double_blocks))]
    targets += [f"single_blocks.{i}.linear1" for i in range(len(diffusion_model.single_blocks))]
    for target in targets:
        weight = diffusion_model.get_submodule(target).weight
        lora[f"diffusion_model.{target}.lora_down.weight"] = torch.randn(4, weight.shape[1], generator=generator) * 0.3
        lora[f"diffusion_model.{target}.lora_up.weight"] = torch.randn(weight.shape[0], 4, generator=generator) * 0.3
    save_file(lora, str(tmp_path / "style.safetensors"))
    folder_paths.add_model_folder_path("loras", str(tmp_path))
    return "style.safetensors"


def test_style_lora_before_and_after_apply(pack, flux_model, flux_weights, encoded, positive, layout, tmp_path):
    lora_name = _flux_style_lora(flux_model, tmp_path)
    loader = comfy_nodes.LoraLoaderModelOnly()
    latent = latent_for(layout)
    patched = apply(pack, flux_model, flux_weights, encoded, grounding_ratio=0.5)
    lora_then_patch = apply(pack, loader.load_lora_model_only(flux_model, lora_name, 1.0)[0], flux_weights, encoded,
                            grounding_ratio=0.5)
    patch_then_lora = loader.load_lora_model_only(patched, lora_name, 1.0)[0]

    without_lora = sample(patched, positive, positive, latent)
    before = sample(lora_then_patch, positive, positive, latent)
    after = sample(patch_then_lora, positive, positive, latent)
    assert (before - without_lora).abs().max() > 1e-2
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-5)


def test_input_model_is_unchanged_by_apply_and_sampling(pack, flux_model, flux_weights, encoded, positive, layout):
    weights_before = {k: v.clone() for k, v in flux_model.model.state_dict().items()}
    options_before = copy.deepcopy(flux_model.model_options)
    patches_before = dict(flux_model.patches)
    reference = sample(flux_model, positive, positive, latent_for(layout))

    patched = apply(pack, flux_model, flux_weights, encoded, grounding_ratio=1.0)
    sample(patched, positive, positive, latent_for(layout))

    assert flux_model.model_options == options_before
    assert flux_model.patches == patches_before
    assert not flux_model.wrappers and not flux_model.additional_models
    for key, value in flux_model.model.state_dict().items():
        assert torch.equal(value, weights_before[key]), key
    assert torch.equal(sample(flux_model, positive, positive, latent_for(layout)), reference)
