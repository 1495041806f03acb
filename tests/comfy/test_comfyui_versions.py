"""The adapters of ``nodes/comfy_compat.py`` on the running ComfyUI (every supported version runs this file):
reference latents, the CLIP's execution device, the branch's compute dtype."""
import pytest
import torch

import node_helpers
from tools import tiny_models
from tools.pack_nodes import apply, encode, latent_for
from tools.sampling import flux_conditioning, sample

REF_LATENT_SHAPE = (1, 16, 8, 8)  # 4 × 4 = 16 reference tokens after the image's tokens


def with_reference_latent(conditioning, method=None):
    reference = torch.randn(REF_LATENT_SHAPE, generator=torch.Generator().manual_seed(0))
    conditioning = node_helpers.conditioning_set_values(conditioning, {"reference_latents": [reference]}, append=True)
    if method is not None:
        conditioning = node_helpers.conditioning_set_values(conditioning, {"reference_latents_method": method})
    return conditioning


def recording_layout_blocks(patched):
    """A clone of ``patched`` whose first layout double and single blocks record (stock output, pack output) for the
    same input: the pack's own block replacement is called inside a recording replacement."""
    probe = patched.clone()
    dit = patched.model_options["transformer_options"]["patches_replace"]["dit"]
    records = {}
    for kind in ("double_block", "single_block"):
        index = min(i for k, i in dit if k == kind)
        pack_patch = dit[(kind, index)]

        def recording(args, extra, pack_patch=pack_patch, kind=kind):
            copies = {name: args[name].clone() for name in ("img", "txt") if name in args}  # blocks add in place
            stock = extra["original_block"]({**args, **copies})["img"]
            out = pack_patch(args, extra)
            records.setdefault(kind, []).append((stock, out["img"].clone()))  # later blocks add in place
            return out
        probe.set_model_patch_replace(recording, "dit", kind, index)
    return probe, records


@pytest.mark.parametrize("method", [None, "index"])
def test_reference_latent_tokens_after_the_image_are_left_to_the_model(pack, flux_weights, flux_clip, layout, method):
    patched = apply(pack, tiny_models.tiny_flux_patcher(), flux_weights, encode(pack, flux_clip, layout),
                    grounding_ratio=1.0)
    probe, records = recording_layout_blocks(patched)
    positive = with_reference_latent(flux_conditioning(flux_clip, "a cat and a dog"), method)
    latent = latent_for(layout)
    out = sample(probe, positive, positive, latent, steps=2)
    assert torch.isfinite(out).all()

    image_tokens = latent.shape[-2] * latent.shape[-1] // 4
    ref_tokens = REF_LATENT_SHAPE[-2] * REF_LATENT_SHAPE[-1] // 4
    for kind, calls in records.items():
        assert len(calls) == 2, kind
        for stock, grounded in calls:
            start = stock.shape[1] - ref_tokens - image_tokens  # single blocks: [text; image; reference]
            assert torch.equal(grounded[:, :start], stock[:, :start]), kind
            assert not torch.allclose(grounded[:, start:start + image_tokens], stock[:, start:start + image_tokens])
            assert torch.equal(grounded[:, start + image_tokens:], stock[:, start + image_tokens:]), kind


def test_the_timestep_zero_reference_method_is_refused_with_the_fix(pack, flux_weights, flux_clip, layout):
    patched = apply(pack, tiny_models.tiny_flux_patcher(), flux_weights, encode(pack, flux_clip, layout))
    positive = with_reference_latent(flux_conditioning(flux_clip, "a cat"), "index_timestep_zero")
    with pytest.raises(ValueError, match=r"InstanceAssembleApply: .*'index_timestep_zero'.*'offset' or 'index'"):
        sample(patched, positive, positive, latent_for(layout), steps=2)


def test_instance_texts_run_on_the_device_encode_from_tokens_runs_them_on(pack, flux_clip, layout):
    clip_l = flux_clip.cond_stage_model.clip_l
    seen = []
    hook = clip_l.transformer.register_forward_hook(
        lambda module, args, out: seen.append((getattr(clip_l, "execution_device", None), out[0].device)))
    try:
        flux_clip.encode_from_tokens(flux_clip.tokenize("a cat"), return_pooled=True)
        comfy_setup = seen.pop()
        encode(pack, flux_clip, layout)
    finally:
        hook.remove()
    assert seen == [comfy_setup]
    assert comfy_setup[1] == torch.device(flux_clip.patcher.load_device)
    assert getattr(clip_l, "execution_device", None) is None  # options reset afterwards


FP8 = torch.float8_e4m3fn


@pytest.mark.parametrize("storage, manual_cast, expected", [
    (torch.float32, None, torch.float32),
    (torch.bfloat16, None, torch.bfloat16),
    (torch.float16, torch.float32, torch.float32),
    (FP8, torch.float16, torch.float16),
    (FP8, None, torch.bfloat16),
    (torch.float8_e5m2, None, torch.bfloat16),
], ids=lambda value: str(value).removeprefix("torch."))
def test_branch_computes_in_comfyui_inference_dtype(pack, flux_weights, flux_clip, layout, storage, manual_cast,
                                                    expected):
    model = tiny_models.tiny_flux_patcher(dtype=storage, manual_cast_dtype=manual_cast)
    if hasattr(model.model, "get_dtype_inference"):
        assert model.model.get_dtype_inference() in (expected, storage)
    patched = apply(pack, model, flux_weights, encode(pack, flux_clip, layout))
    (branch_patcher,) = patched.get_additional_models_with_key("instanceassemble")
    assert {p.dtype for p in branch_patcher.model.parameters()} == {expected}
