"""Instance texts through the graph's own CLIP (docs/reference-semantics.md §5), and where the branch weights live
during sampling."""
import pytest
import torch

import comfy.model_management
from tools import tiny_models
from tools.pack_nodes import apply, encode, latent_for
from tools.sampling import flux_conditioning, sample


class ForwardCounter:
    """Counts forward calls of a real module through a torch forward hook."""

    def __init__(self, module):
        self.count = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.count += 1


def comfy_pooled(clip, text):
    return clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)[1]


def test_flux_instance_text_is_clip_l_pooled_in_one_batched_call(pack, flux_clip, layout):
    counter = ForwardCounter(flux_clip.cond_stage_model.clip_l.transformer)
    encoded = encode(pack, flux_clip, layout)
    counter.handle.remove()
    assert counter.count == 1
    assert encoded.pooled.shape == (4, 64)
    for row, instance in enumerate(layout.instances):
        torch.testing.assert_close(encoded.pooled[row], comfy_pooled(flux_clip, instance.text)[0], rtol=1e-5, atol=1e-6)


def test_instance_text_uses_plain_tokenisation(pack, flux_clip):
    parse = pack.instanceassemble_core.layout.parse_layout
    weighted = parse({"width": 64, "height": 64, "annos": [
        {"bbox": [0, 0, 32, 32], "category_name": "(cat:1.5)", "caption": ""}]})
    plain_ids = flux_clip.tokenizer.clip_l.tokenizer(["(cat:1.5)"], padding="max_length", max_length=77,
                                                     truncation=True)["input_ids"]
    with torch.no_grad():
        expected = flux_clip.cond_stage_model.clip_l(plain_ids)[1]
    torch.testing.assert_close(encode(pack, flux_clip, weighted).pooled, expected.float())
    assert not torch.allclose(encode(pack, flux_clip, weighted).pooled, comfy_pooled(flux_clip, "(cat:1.5)"))

    words = " ".join(f"word{i}" for i in range(120))
    long = parse({"width": 64, "height": 64, "annos": [{"bbox": [0, 0, 32, 32], "category_name": words, "caption": ""}]})
    longer = parse({"width": 64, "height": 64, "annos": [
        {"bbox": [0, 0, 32, 32], "category_name": words + " and more words", "caption": ""}]})
    torch.testing.assert_close(encode(pack, flux_clip, long).pooled, encode(pack, flux_clip, longer).pooled)


def test_sd3_instance_text_is_projected_l_and_g(pack, sd3_clip, layout):
    model = sd3_clip.cond_stage_model
    counters = [ForwardCounter(model.clip_l.transformer), ForwardCounter(model.clip_g.transformer)]
    encoded = encode(pack, sd3_clip, layout)
    for counter in counters:
        counter.handle.remove()
        assert counter.count == 1
    assert encoded.pooled.shape == (4, 128)
    text = layout.instances[0].text
    comfy = comfy_pooled(sd3_clip, text)[0]  # ComfyUI's SD3 pooled: [CLIP-L unprojected, CLIP-G projected]
    torch.testing.assert_close(encoded.pooled[0, 64:], comfy[64:], rtol=1e-5, atol=1e-6)
    projection = model.clip_l.transformer.text_projection.weight
    torch.testing.assert_close(encoded.pooled[0, :64], comfy[:64] @ projection.T.float(), rtol=1e-4, atol=1e-5)


def test_branch_weights_are_counted_and_follow_the_model_dtype(pack, flux_weights, flux_clip, layout):
    model = tiny_models.tiny_flux_patcher(dtype=torch.bfloat16)
    patched = apply(pack, model, flux_weights, encode(pack, flux_clip, layout), grounding_ratio=1.0)
    (branch_patcher,) = patched.get_additional_models_with_key("instanceassemble")
    branch = branch_patcher.model
    assert {p.dtype for p in branch.parameters()} == {torch.bfloat16}
    assert branch_patcher.model_size() == comfy.model_management.module_size(branch) > 0
    positive = flux_conditioning(flux_clip, "a cat")
    out = sample(patched, positive, positive, latent_for(layout), steps=2)
    assert torch.isfinite(out).all()
    assert {p.device for p in branch.parameters()} == {patched.load_device}


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_apply_keeps_the_input_model_clean(pack, family, flux_weights, sd3_weights, flux_clip, sd3_clip, layout):
    model = tiny_models.tiny_flux_patcher() if family == "flux" else tiny_models.tiny_sd3_patcher(depth=2)
    weights, clip = (flux_weights, flux_clip) if family == "flux" else (sd3_weights, sd3_clip)
    patched = apply(pack, model, weights, encode(pack, clip, layout))
    assert patched is not model
    assert "patches_replace" not in model.model_options.get("transformer_options", {})
    assert patched.model_options["transformer_options"]["patches_replace"]["dit"]
