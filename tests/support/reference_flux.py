"""Independent fp32 reference of InstanceAssemble for Flux, built like the official ``src/flux/transformer.py``:
diffusers' own ``FluxTransformerBlock`` / ``FluxSingleTransformerBlock`` / ``FluxPosEmbed``, the official LoRA loaded
with peft through diffusers' Flux LoRA loader (scale alpha/r), gated per module, and the layout branch as a Python
loop over instances that re-projects each instance (docs/reference-semantics.md §8, §9.1, §9.2).
"""
from functools import partial

import torch
from diffusers import FluxPipeline, FluxTransformer2DModel
from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

import reference_layout as rl

_FLUX1_LINEAR1_ROWS = 3 * 3072 + 4 * 3072


def diffusers_flux_state_dict(bfl_state_dict, cfg):
    """BFL/ComfyUI Flux weights -> diffusers ``FluxTransformer2DModel`` names, via diffusers' converter.

    The converter splits single-block ``linear1`` at the FLUX.1 width (3072); those rows are split here at
    ``cfg``'s width instead (q | k | v | mlp).
    """
    hidden = cfg["hidden_size"]
    mlp = int(hidden * cfg["mlp_ratio"])
    checkpoint = dict(bfl_state_dict)
    linear1 = {k: checkpoint.pop(k) for k in list(checkpoint) if k.startswith("single_blocks.") and ".linear1." in k}
    for key in linear1:
        checkpoint[key] = torch.zeros(_FLUX1_LINEAR1_ROWS)
    converted = convert_flux_transformer_checkpoint_to_diffusers(checkpoint)
    if checkpoint:
        raise KeyError(f"Flux keys left unconverted: {sorted(checkpoint)}")
    for key, value in linear1.items():
        block, kind = key.split(".")[1], key.rsplit(".", 1)[1]
        parts = value.split([hidden, hidden, hidden, mlp])
        for name, part in zip(("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), parts):
            converted[f"single_transformer_blocks.{block}.{name}.{kind}"] = part
    return converted


def flux_layout_blocks(num_double, num_single):
    """Official layout blocks: double blocks i % 3 == 0 and single block 0."""
    return [f"transformer_blocks.{i}" for i in range(num_double) if i % 3 == 0] + \
        ["single_transformer_blocks.0"][:num_single]


class ReferenceFlux:
    """Official InstanceAssemble Flux forward in fp32 on a tiny (or any) BFL-format Flux.

    bfl_state_dict/cfg: as ``tiny_models.tiny_flux_state_dict`` / ``FLUX_TINY`` (ComfyUI unet config keys).
    lora_sd: official ``pytorch_lora_weights`` dict (``transformer.<path>.lora_{A,B}.weight``, optional ``.alpha``).
    layout_sd: official ``layout.pth`` dict (``layout_net.*``, ``<block>.layout_forward.*``).
    """

    def __init__(self, bfl_state_dict: dict, cfg: dict, lora_sd: dict, layout_sd: dict):
        if cfg["theta"] != 10000 or cfg["patch_size"] != 2 or not cfg["qkv_bias"] or cfg["mlp_ratio"] != 4.0:
            raise ValueError("diffusers' Flux blocks need theta 10000, patch 2, qkv bias and mlp_ratio 4")
        hidden, heads = cfg["hidden_size"], cfg["num_heads"]
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=4 * cfg["in_channels"], out_channels=4 * cfg["out_channels"],
            num_layers=cfg["depth"], num_single_layers=cfg["depth_single_blocks"],
            attention_head_dim=hidden // heads, num_attention_heads=heads,
            joint_attention_dim=cfg["context_in_dim"], pooled_projection_dim=cfg["vec_in_dim"],
            guidance_embeds=cfg["guidance_embed"], axes_dims_rope=tuple(cfg["axes_dim"]))
        transformer.load_state_dict(diffusers_flux_state_dict(bfl_state_dict, cfg), strict=True)
        lora, alphas = FluxPipeline.lora_state_dict(dict(lora_sd), return_alphas=True)
        FluxPipeline.load_lora_into_transformer(lora, network_alphas=alphas, transformer=transformer)
        rl.disable_all_lora(transformer)
        layout_blocks = flux_layout_blocks(cfg["depth"], cfg["depth_single_blocks"])
        rl.attach_layout_modules(transformer, layout_blocks, cfg["vec_in_dim"])
        rl.load_layout_weights(transformer, layout_sd)
        self.transformer = transformer.eval()
        self.cfg = cfg

    @torch.no_grad()
    def __call__(self, *, img, img_ids, txt, txt_ids, timesteps, y, guidance, boxes_xyxy, instance_pooled,
                 image_size, layout_scale=1.0, return_block_outputs=False, branch=None):
        """Mirror of ComfyUI ``Flux.forward_orig`` with the layout branch.

        img [B, L, 64] packed patch tokens, img_ids [B, L, 3] (same for every row), txt [B, Lt, ctx],
        txt_ids [B, Lt, 3], timesteps [B] (sigma), y [B, vec_in], guidance [B].
        boxes_xyxy[b]: pixel boxes of row b, or None; instance_pooled[b]: [K_b, vec_in]; image_size: (W, H) with
        (H//16)·(W//16) == L. layout_scale 0 gives the stock model.
        Returns [B, L, 64], or (that, {"double.i": (img, txt, layout), "single.i": img}) block outputs.
        branch: run another implementation of the layout branch inside the same diffusers model, an object with
        ``double(block_path, block, hidden, layout_states, temb, layout, layout_rotary, layout_scale)`` and
        ``single(...)`` returning (hidden, layout_states); default: the official per-instance loop.
        """
        t = self.transformer
        if not torch.equal(img_ids, img_ids[:1].expand_as(img_ids)) or not torch.equal(
                txt_ids, txt_ids[:1].expand_as(txt_ids)):
            raise ValueError("the reference shares img_ids/txt_ids over the batch, like diffusers")
        layout = rl.LayoutInputs(boxes_xyxy, instance_pooled, image_size, self.cfg["vec_in_dim"])
        if layout.grid[0] * layout.grid[1] != img.shape[1]:
            raise ValueError(f"token grid {layout.grid} of image_size {image_size} does not hold {img.shape[1]} tokens")

        hidden = t.x_embedder(img)
        timestep = timesteps.to(hidden.dtype) * 1000
        if self.cfg["guidance_embed"]:
            temb = t.time_text_embed(timestep, guidance.to(hidden.dtype) * 1000, y)
        else:
            temb = t.time_text_embed(timestep, y)
        encoder = t.context_embedder(txt)
        rotary = t.pos_embed(torch.cat([txt_ids[0], img_ids[0]]))
        layout_states = t.layout_net(layout.boxes, layout.masks, layout.pooled)
        layout_rotary = [t.pos_embed(torch.cat([layout.token_ids[i, j][None], img_ids[i][layout.indices[i][j]]]))
                         for i, j in layout.instances]
        grounded = layout_scale != 0.0

        block_outputs = {}
        for index, block in enumerate(t.transformer_blocks):
            encoder, hidden = block(hidden_states=hidden, encoder_hidden_states=encoder, temb=temb,
                                    image_rotary_emb=rotary)
            if grounded and hasattr(block, "layout_forward"):
                double = _double_branch if branch is None else partial(branch.double, f"transformer_blocks.{index}")
                hidden, layout_states = double(block, hidden, layout_states, temb, layout, layout_rotary, layout_scale)
            block_outputs[f"double.{index}"] = (hidden, encoder, layout_states)
        for index, block in enumerate(t.single_transformer_blocks):
            encoder, hidden = block(hidden_states=hidden, encoder_hidden_states=encoder, temb=temb,
                                    image_rotary_emb=rotary)
            if grounded and hasattr(block, "layout_forward"):
                single = (_single_branch if branch is None
                          else partial(branch.single, f"single_transformer_blocks.{index}"))
                hidden, layout_states = single(block, hidden, layout_states, temb, layout, layout_rotary, layout_scale)
            block_outputs[f"single.{index}"] = hidden

        out = t.proj_out(t.norm_out(hidden, temb))
        return (out, block_outputs) if return_block_outputs else out


def _double_branch(block, hidden, layout_states, temb, layout, layout_rotary, layout_scale):
    """Assembling branch of a double block (§9.1) after the stock block.

    hidden [B, L, D] (post-FFN image stream), layout_states [B, N, D], temb [B, D] -> (hidden, layout_states).
    """
    with rl.lora_enabled((block.norm1.linear, block.norm1_context.linear)):
        norm_hidden, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.norm1(hidden, emb=temb)
        norm_layout, layout_gate_msa, layout_shift_mlp, layout_scale_mlp, layout_gate_mlp = block.norm1_context(
            layout_states, emb=temb)
    attn = block.attn
    attn_modules = (attn.to_q, attn.to_k, attn.to_v, attn.add_q_proj, attn.add_k_proj, attn.add_v_proj,
                    attn.to_out[0], attn.to_add_out)
    sums = torch.zeros_like(norm_hidden)
    counts = torch.zeros(hidden.shape[:2], dtype=hidden.dtype)
    layout_attn = torch.zeros_like(layout_states)
    for k, (i, j) in enumerate(layout.instances):
        idx = layout.indices[i][j]
        with rl.lora_enabled(attn_modules):
            img_out, layout_out = attn(hidden_states=norm_hidden[i, idx][None],
                                       encoder_hidden_states=norm_layout[i, j][None, None],
                                       image_rotary_emb=layout_rotary[k])
        sums[i, idx] += layout_scale * block.layout_forward(img_out[0])
        counts[i, idx] += 1
        layout_attn[i, j] = layout_out[0, 0]
    counts = counts + (counts == 0)
    hidden = hidden + gate_msa.unsqueeze(1) * sums / counts.unsqueeze(-1)

    with rl.lora_enabled((block.ff.net[2],)):
        norm_hidden = block.norm2(hidden) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        hidden = hidden + gate_mlp.unsqueeze(1) * block.ff(norm_hidden)

    layout_states = layout_states + layout_gate_msa.unsqueeze(1) * layout_attn
    with rl.lora_enabled((block.ff_context.net[2],)):
        norm_layout = block.norm2_context(layout_states) * (1 + layout_scale_mlp[:, None]) + layout_shift_mlp[:, None]
        layout_states = layout_states + layout_gate_mlp.unsqueeze(1) * block.ff_context(norm_layout)
    return hidden, layout_states


def _single_branch(block, hidden, layout_states, temb, layout, layout_rotary, layout_scale):
    """Assembling branch of single block 0 (§9.2) after the stock block.

    hidden [B, L, D] (image part of the stream), layout_states [B, N, D], temb [B, D] -> (hidden, layout_states).
    """
    attn = block.attn
    sums = torch.zeros_like(hidden)
    counts = torch.zeros(hidden.shape[:2], dtype=hidden.dtype)
    layout_add = torch.zeros_like(layout_states)
    for k, (i, j) in enumerate(layout.instances):
        idx = layout.indices[i][j]
        sequence = torch.cat([layout_states[i, j][None, None], hidden[i, idx][None]], dim=1)
        with rl.lora_enabled((block.norm.linear, block.proj_mlp)):
            norm_sequence, gate = block.norm(sequence, emb=temb[i:i + 1])
            mlp = block.act_mlp(block.proj_mlp(norm_sequence))
        with rl.lora_enabled((attn.to_q, attn.to_k, attn.to_v)):
            attn_out = attn(hidden_states=norm_sequence, image_rotary_emb=layout_rotary[k])
        with rl.lora_enabled((block.proj_out,)):
            out = gate.unsqueeze(1) * block.proj_out(torch.cat([attn_out, mlp], dim=2))
        sums[i, idx] += layout_scale * block.layout_forward(out[0, 1:])
        counts[i, idx] += 1
        layout_add[i, j] = out[0, 0]
    counts = counts + (counts == 0)
    return hidden + sums / counts.unsqueeze(-1), layout_states + layout_add
