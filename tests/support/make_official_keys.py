"""Writes ``tests/data/official_keys_<family>.json``: the independent oracle the family descriptions are tested
against. Run once (``python tests/support/make_official_keys.py``) and check the files in.

Nothing here reads ``instanceassemble_core``. The Linear shapes come from diffusers' own transformer classes,
built at the released sizes on the meta device; which blocks carry the branch, which LoRA modules are active,
where each lands on ComfyUI's layers, the LoRA scale rule and the instance-text recipe are written from the
reference semantics (docs/reference-semantics.md §5, §7, §8, §13.6, §13.7).
"""
import json
from pathlib import Path

import torch
from diffusers import FluxTransformer2DModel, SD3Transformer2DModel

OUT = Path(__file__).resolve().parents[1] / "data"

# The active LoRA modules of a layout block (§8) -> (ComfyUI layer, first output row in multiples of D), §13.6
_FLUX_DOUBLE_SLOTS = {
    "norm1.linear": ("img_mod.lin", 0), "norm1_context.linear": ("txt_mod.lin", 0),
    "attn.to_q": ("img_attn.qkv", 0), "attn.to_k": ("img_attn.qkv", 1), "attn.to_v": ("img_attn.qkv", 2),
    "attn.add_q_proj": ("txt_attn.qkv", 0), "attn.add_k_proj": ("txt_attn.qkv", 1),
    "attn.add_v_proj": ("txt_attn.qkv", 2),
    "attn.to_out.0": ("img_attn.proj", 0), "attn.to_add_out": ("txt_attn.proj", 0),
    "ff.net.2": ("img_mlp.2", 0), "ff_context.net.2": ("txt_mlp.2", 0),
}
_FLUX_SINGLE_SLOTS = {
    "norm.linear": ("modulation.lin", 0), "attn.to_q": ("linear1", 0), "attn.to_k": ("linear1", 1),
    "attn.to_v": ("linear1", 2), "proj_mlp": ("linear1", 3), "proj_out": ("linear2", 0),
}
_SD3_SLOTS = {
    "norm1.linear": ("x_block.adaLN_modulation.1", 0), "norm1_context.linear": ("context_block.adaLN_modulation.1", 0),
    "attn.to_q": ("x_block.attn.qkv", 0), "attn.to_k": ("x_block.attn.qkv", 1), "attn.to_v": ("x_block.attn.qkv", 2),
    "attn.add_q_proj": ("context_block.attn.qkv", 0), "attn.add_k_proj": ("context_block.attn.qkv", 1),
    "attn.add_v_proj": ("context_block.attn.qkv", 2),
    "attn.to_out.0": ("x_block.attn.proj", 0), "attn.to_add_out": ("context_block.attn.proj", 0),
    "ff.net.2": ("x_block.mlp.fc2", 0), "ff_context.net.2": ("context_block.mlp.fc2", 0),
}


def _linears(model) -> dict[str, list[int]]:
    return {name: list(module.weight.shape) for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)}


def _manifest(family, model, hidden, pooled, layout_blocks, slots_of_block, lora_scale, pooled_text, rows_swapped):
    linears = _linears(model)
    active, host_slots = {}, {}
    for block in layout_blocks:
        for module, (layer, row) in slots_of_block(block).items():
            if f"{block}.{module}" in linears:  # a context-pre-only block lacks to_add_out and ff_context
                active[f"{block}.{module}"] = linears[f"{block}.{module}"]
                host_slots[f"{block}.{module}"] = [layer, row * hidden]
    layout_keys = {
        "layout_net.text_embedder.linear_1.weight": [hidden, pooled], "layout_net.text_embedder.linear_1.bias": [hidden],
        "layout_net.text_embedder.linear_2.weight": [hidden, hidden], "layout_net.text_embedder.linear_2.bias": [hidden],
        "layout_net.linears.linear_1.weight": [hidden // 2, hidden + 1152],
        "layout_net.linears.linear_1.bias": [hidden // 2],
        "layout_net.linears.linear_2.weight": [hidden, hidden // 2], "layout_net.linears.linear_2.bias": [hidden],
    }
    for block in layout_blocks:
        layout_keys[f"{block}.layout_forward.weight"] = [hidden, hidden]
        layout_keys[f"{block}.layout_forward.bias"] = [hidden]
    return {"family": family, "hidden_dim": hidden, "pooled_dim": pooled, "layout_blocks": layout_blocks,
            "lora_scale": lora_scale, "pooled_text": pooled_text, "scale_shift_rows": rows_swapped,
            "linear_modules": linears, "active_lora_modules": active, "host_slots": host_slots,
            "layout_keys": layout_keys}


def main():
    with torch.device("meta"):
        flux = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
                                      attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                                      pooled_projection_dim=768, guidance_embeds=True)
        sd3 = SD3Transformer2DModel(sample_size=128, patch_size=2, in_channels=16, num_layers=24,
                                    attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096,
                                    caption_projection_dim=1536, pooled_projection_dim=2048, out_channels=16,
                                    pos_embed_max_size=192)
    flux_blocks = [f"transformer_blocks.{i}" for i in (0, 3, 6, 9, 12, 15, 18)] + ["single_transformer_blocks.0"]
    manifests = {
        "flux": _manifest(
            "flux", flux, 3072, 768, flux_blocks,
            lambda block: _FLUX_SINGLE_SLOTS if block.startswith("single_") else _FLUX_DOUBLE_SLOTS,
            lora_scale="alpha/r", pooled_text=[["clip_l", False]], rows_swapped=[]),
        "sd3": _manifest(
            "sd3", sd3, 1536, 2048, [f"transformer_blocks.{i}" for i in range(24)], lambda block: _SD3_SLOTS,
            lora_scale="1", pooled_text=[["clip_l", True], ["clip_g", True]],
            rows_swapped=["transformer_blocks.23.norm1_context.linear"]),
    }
    for family, manifest in manifests.items():
        (OUT / f"official_keys_{family}.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
