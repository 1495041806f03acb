"""Independent fp32 reference of InstanceAssemble for SD3, built like the official ``src/sd3/transformer.py``:
diffusers' own ``JointTransformerBlock`` (attention order [image; context], per instance [image; layout]), the
official LoRA loaded with peft through diffusers' SD3 LoRA loader (no alphas: scale 1), gated per module, and the
layout branch as a Python loop over instances that re-projects each instance (docs/reference-semantics.md §8, §9.3).
"""
from functools import partial

import torch
from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline
from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers

import reference_layout as rl

HEAD_DIM = 64


def mmdit_default_pos_embed(dim, h, w):
    """MMDiT's computed sin-cos position embedding [1, h·w, dim] for a checkpoint without ``pos_embed``:
    grid centred at 7.5 with half-extent 7.5 along the shorter side, features [width part, height part]."""
    shorter = min(h, w)
    half_h, half_w = h / shorter * 7.5, w / shorter * 7.5
    grid_h, grid_w = torch.meshgrid(torch.linspace(7.5 - half_h, 7.5 + half_h, h),
                                    torch.linspace(7.5 - half_w, 7.5 + half_w, w), indexing="ij")
    return torch.cat([_sincos(dim // 2, grid_w), _sincos(dim // 2, grid_h)], dim=1)[None]


def _sincos(dim, positions):
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim / 2.0))
    angles = positions.reshape(-1)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ReferenceSD3:
    """Official InstanceAssemble SD3 forward in fp32 on a tiny (or any) MMDiT-format SD3.

    mmdit_state_dict: as ``tiny_models.tiny_sd3_state_dict`` (ComfyUI/MMDiT key names).
    lora_sd: official ``pytorch_lora_weights`` dict; any ``.alpha`` keys are ignored, as by the official SD3 loader.
    layout_sd: official ``layout.pth`` dict (``layout_net.*``, ``transformer_blocks.i.layout_forward.*``).
    """

    def __init__(self, mmdit_state_dict: dict, lora_sd: dict, layout_sd: dict):
        checkpoint = dict(mmdit_state_dict)
        depth = 1 + max(int(k.split(".")[1]) for k in checkpoint if k.startswith("joint_blocks."))
        hidden = checkpoint["x_embedder.proj.weight"].shape[0]
        self.pooled_dim = checkpoint["y_embedder.mlp.0.weight"].shape[1]
        self.has_pos_table = "pos_embed" in checkpoint
        pos_embed_max = round(checkpoint["pos_embed"].shape[1] ** 0.5) if self.has_pos_table else None
        if not self.has_pos_table:
            checkpoint["pos_embed"] = torch.zeros(())
        transformer = SD3Transformer2DModel(
            patch_size=2, in_channels=16, out_channels=16, num_layers=depth, attention_head_dim=HEAD_DIM,
            num_attention_heads=hidden // HEAD_DIM, joint_attention_dim=checkpoint["context_embedder.weight"].shape[1],
            caption_projection_dim=hidden, pooled_projection_dim=self.pooled_dim, pos_embed_max_size=pos_embed_max,
            qk_norm="rms_norm" if any(".attn.ln_q." in k for k in checkpoint) else None)
        converted = convert_sd3_transformer_checkpoint_to_diffusers(checkpoint)
        if checkpoint:
            raise KeyError(f"SD3 keys left unconverted: {sorted(checkpoint)}")
        if not self.has_pos_table:
            del converted["pos_embed.pos_embed"]
            transformer.pos_embed.pos_embed = None
        transformer.load_state_dict(converted, strict=True)
        StableDiffusion3Pipeline.load_lora_into_transformer(
            {k: v for k, v in lora_sd.items() if not k.endswith(".alpha")}, transformer=transformer)
        rl.disable_all_lora(transformer)
        rl.attach_layout_modules(transformer, [f"transformer_blocks.{i}" for i in range(depth)], self.pooled_dim)
        rl.load_layout_weights(transformer, layout_sd)
        self.transformer = transformer.eval()

    @torch.no_grad()
    def __call__(self, *, x, timesteps, context, y, boxes_xyxy, instance_pooled, image_size, layout_scale=1.0,
                 return_block_outputs=False, branch=None):
        """Mirror of ComfyUI ``OpenAISignatureMMDITWrapper.forward`` with the layout branch.

        x [B, 16, h, w] latent (h, w even), timesteps [B] (sigma·1000), context [B, Lc, ctx], y [B, adm].
        boxes_xyxy[b]: pixel boxes of row b, or None (e.g. the uncond row: it still gets the LoRA modulation and the
        extra FFN pass); instance_pooled[b]: [K_b, adm]; image_size: (W, H) with (H//16, W//16) == (h/2, w/2).
        Returns [B, 16, h, w], or (that, {"double.i": (img, txt, layout)}) block outputs (txt/layout None at the end).
        branch: another implementation of the layout branch run inside the same diffusers model, an object with
        ``joint(block_path, block, hidden, layout_states, temb, layout, layout_scale)`` -> (hidden, layout_states);
        default: the official per-instance loop.
        """
        t = self.transformer
        batch, _, h, w = x.shape
        layout = rl.LayoutInputs(boxes_xyxy, instance_pooled, image_size, self.pooled_dim)
        if h % 2 or w % 2 or layout.grid != (h // 2, w // 2):
            raise ValueError(f"token grid {layout.grid} of image_size {image_size} does not match latent {h}x{w}")

        hidden = t.pos_embed(x)
        if not self.has_pos_table:
            hidden = hidden + mmdit_default_pos_embed(hidden.shape[-1], h // 2, w // 2)
        temb = t.time_text_embed(timesteps, y)
        encoder = t.context_embedder(context)
        layout_states = t.layout_net(layout.boxes, layout.masks, layout.pooled)
        grounded = layout_scale != 0.0

        block_outputs = {}
        for index, block in enumerate(t.transformer_blocks):
            encoder, hidden = block(hidden_states=hidden, encoder_hidden_states=encoder, temb=temb)
            if grounded:
                joint = _joint_branch if branch is None else partial(branch.joint, f"transformer_blocks.{index}")
                hidden, layout_states = joint(block, hidden, layout_states, temb, layout, layout_scale)
            block_outputs[f"double.{index}"] = (hidden, encoder, layout_states)

        hidden = t.proj_out(t.norm_out(hidden, temb))
        hidden = hidden.reshape(batch, h // 2, w // 2, 2, 2, 16)
        out = torch.einsum("nhwpqc->nchpwq", hidden).reshape(batch, 16, h, w)
        return (out, block_outputs) if return_block_outputs else out


def _joint_branch(block, hidden, layout_states, temb, layout, layout_scale):
    """Assembling branch of a joint block (§9.3) after the stock block.

    hidden [B, L, D] (post-FFN image stream), layout_states [B, N, D], temb [B, D] -> (hidden, layout_states);
    the last (context-pre-only) block returns layout_states None.
    """
    pre_only = block.context_pre_only
    with rl.lora_enabled((block.norm1.linear, block.norm1_context.linear)):
        norm_hidden, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.norm1(hidden, emb=temb)
        if pre_only:
            norm_layout = block.norm1_context(layout_states, temb)
        else:
            norm_layout, layout_gate_msa, layout_shift_mlp, layout_scale_mlp, layout_gate_mlp = block.norm1_context(
                layout_states, emb=temb)
    attn = block.attn
    attn_modules = (attn.to_q, attn.to_k, attn.to_v, attn.add_q_proj, attn.add_k_proj, attn.add_v_proj,
                    attn.to_out[0], attn.to_add_out)
    sums = torch.zeros_like(norm_hidden)
    counts = torch.zeros(hidden.shape[:2], dtype=hidden.dtype)
    layout_attn = torch.zeros_like(layout_states)
    with rl.lora_enabled(attn_modules):
        for i, j in layout.instances:
            idx = layout.indices[i][j]
            if len(idx) == 0:
                layout_attn[i, j] = _lone_layout_token_attention(attn, norm_layout[i, j])
                continue
            img_out, layout_out = attn(hidden_states=norm_hidden[i, idx][None],
                                       encoder_hidden_states=norm_layout[i, j][None, None])
            sums[i, idx] += layout_scale * block.layout_forward(img_out[0])
            counts[i, idx] += 1
            layout_attn[i, j] = layout_out[0, 0]
    counts = counts + (counts == 0)
    hidden = hidden + gate_msa.unsqueeze(1) * sums / counts.unsqueeze(-1)

    with rl.lora_enabled((block.ff.net[2],)):
        norm_hidden = block.norm2(hidden) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        hidden = hidden + gate_mlp.unsqueeze(1) * block.ff(norm_hidden)

    if pre_only:
        return hidden, None
    layout_states = layout_states + layout_gate_msa.unsqueeze(1) * layout_attn
    with rl.lora_enabled((block.ff_context.net[2],)):
        norm_layout = block.norm2_context(layout_states) * (1 + layout_scale_mlp[:, None]) + layout_shift_mlp[:, None]
        layout_states = layout_states + layout_gate_mlp.unsqueeze(1) * block.ff_context(norm_layout)
    return hidden, layout_states


def _lone_layout_token_attention(attn, norm_layout_token):
    """Attention output [D] of a layout token whose box holds no image token: it attends only to itself, so the
    output is its own value (diffusers' SD3 processor cannot reshape an empty image sequence)."""
    out = attn.add_v_proj(norm_layout_token[None])
    return (out if attn.to_add_out is None else attn.to_add_out(out))[0]
