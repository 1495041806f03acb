"""SD3 in ComfyUI: classifier-free guidance, negative prompts, batches, and two patched families side by side."""
import pytest
import torch

import comfy.samplers
import nodes as comfy_nodes
from tools.pack_nodes import apply, encode, latent_for
from tools.sampling import GroundingProbe, flux_conditioning, replay, sample, text_conditioning, trajectory


@pytest.fixture
def encoded(pack, sd3_clip, layout):
    return encode(pack, sd3_clip, layout)


@pytest.fixture
def positive(sd3_clip):
    return text_conditioning(sd3_clip, "a cat and a dog on grass")


@pytest.fixture
def negative(sd3_clip):
    return text_conditioning(sd3_clip, "blurry, low quality")


def test_ksampler_cfg7_with_negative_prompt(pack, sd3_model, sd3_weights, encoded, positive, negative, layout):
    patched = apply(pack, sd3_model, sd3_weights, encoded, grounding_ratio=0.5)
    latent = {"samples": latent_for(layout)}
    stock = comfy_nodes.KSampler().sample(sd3_model, 3, 4, 7.0, "euler", "simple", positive, negative, latent)[0]
    grounded = comfy_nodes.KSampler().sample(patched, 3, 4, 7.0, "euler", "simple", positive, negative, latent)[0]
    assert torch.isfinite(grounded["samples"]).all()
    assert (grounded["samples"] - stock["samples"]).abs().max() > 1e-2


def test_instances_only_on_cond_rows_but_ffn_on_every_row(pack, sd3_model, sd3_weights, sd3_clip, layout, positive,
                                                           negative):
    moved = pack.instanceassemble_core.layout.parse_layout({**layout.to_dict(), "boxes": [
        {**box, "bbox": [256 - box["bbox"][2], box["bbox"][1], 256 - box["bbox"][0], box["bbox"][3]]}
        for box in layout.to_dict()["boxes"]]})
    runs = {}
    for name, model, lay in (("stock", sd3_model, None), ("layout", sd3_model, layout), ("moved", sd3_model, moved)):
        probe = GroundingProbe()
        if lay is not None:
            model = apply(pack, model, sd3_weights, encode(pack, sd3_clip, lay), grounding_ratio=1.0)
        sample(probe.attach(model), positive, negative, latent_for(layout), steps=1, cfg=7.0)
        (sigma, grounded, cond_or_uncond), = probe.calls
        assert grounded == (lay is not None) and sorted(cond_or_uncond) == [0, 1]
        rows = probe.outputs[0].chunk(2)
        runs[name] = {kind: rows[index] for index, kind in enumerate(cond_or_uncond)}
    assert (runs["layout"][1] - runs["stock"][1]).abs().max() > 1e-3    # uncond rows: modulation + extra FFN
    torch.testing.assert_close(runs["layout"][1], runs["moved"][1], rtol=0, atol=1e-6)  # ...but no boxes
    assert (runs["layout"][0] - runs["moved"][0]).abs().max() > 1e-3    # cond rows follow the boxes


def test_cfg1_runs_cond_only(pack, sd3_model, sd3_weights, encoded, positive, layout):
    probe = GroundingProbe()
    patched = probe.attach(apply(pack, sd3_model, sd3_weights, encoded, grounding_ratio=0.5))
    out = sample(patched, positive, positive, latent_for(layout), steps=4, cfg=1.0)
    assert torch.isfinite(out).all()
    assert [c for _, _, c in probe.calls] == [[0]] * 4
    assert [g for _, g, _ in probe.calls] == [True, True, False, False]


def test_grounding_counts_steps_as_for_flux(pack, sd3_model, sd3_weights, encoded, positive, negative, layout):
    steps = 10
    probe = GroundingProbe()
    patched = probe.attach(apply(pack, sd3_model, sd3_weights, encoded, grounding_ratio=0.3))
    sigmas = comfy.samplers.calculate_sigmas(sd3_model.get_model_object("model_sampling"), "simple", steps)
    inputs, _ = trajectory(patched, positive, negative, latent_for(layout), sigmas, cfg=7.0)
    assert [g for _, g, _ in probe.calls] == [True] * 3 + [False] * 7
    patched_out = replay(patched, positive, negative, latent_for(layout), sigmas, inputs, cfg=7.0)
    stock_out = replay(sd3_model, positive, negative, latent_for(layout), sigmas, inputs, cfg=7.0)
    assert all((patched_out[i] - stock_out[i]).abs().max() > 1e-3 for i in range(3))
    assert all(torch.equal(patched_out[i], stock_out[i]) for i in range(3, steps))


def test_batch_of_two_applies_the_layout_to_every_item(pack, sd3_model, sd3_weights, encoded, positive, negative,
                                                       layout):
    patched = apply(pack, sd3_model, sd3_weights, encoded, grounding_ratio=1.0)
    single = sample(patched, positive, negative, latent_for(layout, 1), steps=2, cfg=7.0)
    double = sample(patched, positive, negative, latent_for(layout, 2), steps=2, cfg=7.0)
    stock = sample(sd3_model, positive, negative, latent_for(layout, 2), steps=2, cfg=7.0)
    torch.testing.assert_close(double[:1], single, rtol=1e-4, atol=1e-4)
    assert (double[1] - stock[1]).abs().max() > 1e-2


def test_conditioning_batches_keep_working(pack, sd3_model, sd3_weights, encoded, sd3_clip, negative, layout):
    patched = apply(pack, sd3_model, sd3_weights, encoded, grounding_ratio=1.0)
    two_prompts = comfy_nodes.ConditioningCombine().combine(text_conditioning(sd3_clip, "a cat"),
                                                            text_conditioning(sd3_clip, "a dog"))[0]
    probe = GroundingProbe()
    out = sample(probe.attach(patched), two_prompts, negative, latent_for(layout), steps=2, cfg=5.0)
    assert torch.isfinite(out).all()
    assert all(sorted(c) == [0, 0, 1] for _, _, c in probe.calls)


def test_flux_and_sd3_patches_do_not_interfere(pack, sd3_model, sd3_weights, encoded, positive, negative, flux_model,
                                               flux_weights, flux_clip, layout):
    sd3_patched = apply(pack, sd3_model, sd3_weights, encoded, grounding_ratio=0.5)
    flux_patched = apply(pack, flux_model, flux_weights, encode(pack, flux_clip, layout), grounding_ratio=0.5)
    flux_positive = flux_conditioning(flux_clip, "a cat")
    alone_sd3 = sample(sd3_patched, positive, negative, latent_for(layout), cfg=7.0)
    alone_flux = sample(flux_patched, flux_positive, flux_positive, latent_for(layout))
    for _ in range(2):
        assert torch.equal(sample(flux_patched, flux_positive, flux_positive, latent_for(layout)), alone_flux)
        assert torch.equal(sample(sd3_patched, positive, negative, latent_for(layout), cfg=7.0), alone_sd3)
