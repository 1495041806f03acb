"""Variant (a): the layout branch as the reference computes it (spec §9.1–§9.3), a Python loop over instances.

Per instance k the loop gathers the box's normalised image tokens and the instance's layout token, projects Q/K/V
with base + LoRA (diffusers' separate ``to_q``/``to_k``/``to_v`` modules, i.e. row slices of the host's fused
layer, with the peft delta ``(B(Ax) + b)·scale`` next to it), attends over [layout; image] (Flux) or [image;
layout] (SD3), applies the output projections and ``layout_forward``, and scatter-adds into a sum and a count.
Every token is thus re-projected once per box that covers it. Once per block, as in the reference (§9.4): the
``norm1``/``norm1_context`` modulation, the extra FFN and the layout FFN. In the single block the modulation,
``proj_mlp`` and ``proj_out`` run per instance too (§9.2). RoPE uses diffusers' interleaved (cos, sin) form.

Everything here is written independently of ``instanceassemble_core.assemble``; only the weights are shared
(``blocks.JointBlock`` / ``blocks.SingleBlock``).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .bench_blocks import EPS, JointBlock, SingleBlock, gelu, layer_norm, rope_angles

# diffusers module → (host layer attribute, output-row slice in multiples of D (None: all rows))
_JOINT_MODULES = {
    "norm1.linear": ("img_mod", None), "norm1_context.linear": ("ctx_mod", None),
    "attn.to_q": ("img_qkv", 0), "attn.to_k": ("img_qkv", 1), "attn.to_v": ("img_qkv", 2),
    "attn.add_q_proj": ("ctx_qkv", 0), "attn.add_k_proj": ("ctx_qkv", 1), "attn.add_v_proj": ("ctx_qkv", 2),
    "attn.to_out.0": ("img_proj", None), "attn.to_add_out": ("ctx_proj", None),
    "ff.net.0.proj": ("img_fc1", None), "ff.net.2": ("img_fc2", None),
    "ff_context.net.0.proj": ("ctx_fc1", None), "ff_context.net.2": ("ctx_fc2", None),
}
_SINGLE_MODULES = {
    "norm.linear": ("modulation", None),
    "attn.to_q": ("linear1", 0), "attn.to_k": ("linear1", 1), "attn.to_v": ("linear1", 2),
    "proj_mlp": ("linear1", "mlp"), "proj_out": ("linear2", None),
}


def _module(block, table: dict, name: str, x: Tensor) -> Tensor:
    """The diffusers module ``name`` of ``block`` applied to x, with its LoRA switched on."""
    attribute, part = table[name]
    layer = getattr(block, attribute)
    weight, bias = layer.weight, layer.bias
    if part == "mlp":
        weight, bias = weight[3 * block.dim:], bias[3 * block.dim:]
    elif part is not None:
        rows = slice(part * block.dim, (part + 1) * block.dim)
        weight, bias = weight[rows], bias[rows]
    out = F.linear(x, weight, bias)
    delta = block.delta(name)
    if delta is not None:
        low = F.linear(F.linear(x, delta.down), delta.up, delta.up_bias)
        out = out + low * delta.scale
    return out


def rms(x: Tensor, scale: Tensor) -> Tensor:
    """diffusers RMSNorm: float32 statistics, then the weight."""
    variance = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * torch.rsqrt(variance + EPS)).to(x.dtype) * scale


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """diffusers ``apply_rotary_emb`` (use_real, interleaved pairs): x [1, H, N, d], cos/sin [N, d]."""
    real, imag = x.float().reshape(*x.shape[:-1], -1, 2).unbind(-1)
    rotated = torch.stack([-imag, real], dim=-1).flatten(-2)
    return (x.float() * cos + rotated * sin).to(x.dtype)


def instance_rope(positions: Tensor, token_indices: list[Tensor], grid_w: int, device=None) -> list[tuple[Tensor, Tensor]]:
    """Per instance, (cos, sin) [1 + n_k, d] for the ids [(0, row_c, col_c); (0, row, col) of each box token]
    (spec §6), computed once per forward like the reference's ``layout_rotary``."""
    tables = []
    for position, tokens in zip(positions, token_indices):
        ids = torch.zeros(1 + tokens.numel(), 3)
        ids[0, 1:] = position
        ids[1:, 1] = (tokens // grid_w).float()
        ids[1:, 2] = (tokens % grid_w).float()
        angles = rope_angles(ids)
        cos = angles.cos().float().repeat_interleave(2, dim=-1)
        sin = angles.sin().float().repeat_interleave(2, dim=-1)
        tables.append((cos.to(device), sin.to(device)))
    return tables


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """[N, D] → [1, H, N, d]."""
    return x.view(1, x.shape[0], heads, -1).transpose(1, 2)


def loop_joint_branch(block: JointBlock, img: Tensor, vec: Tensor, layout_stream: Tensor,
                      token_indices: list[Tensor], rows: list[int], layout_scale: float,
                      rope: Optional[list[tuple[Tensor, Tensor]]] = None) -> tuple[Tensor, Optional[Tensor]]:
    """Spec §9.1 / §9.3 steps 2–6. img [B, S, D] after the stock block, vec [B, D], layout_stream [K, D]."""
    def module(name, x):
        return _module(block, _JOINT_MODULES, name, x)

    heads, flux = block.heads, block.kind == "flux"
    sv = F.silu(vec)
    shift1, scale1, gate1, shift2, scale2, gate2 = module("norm1.linear", sv).chunk(6, dim=-1)
    img_hat = layer_norm(img) * (1 + scale1[:, None]) + shift1[:, None]
    ctx_mod = module("norm1_context.linear", sv)[rows]
    if block.context_pre_only:
        l_shift1, l_scale1 = ctx_mod.chunk(2, dim=-1)
    else:
        l_shift1, l_scale1, l_gate1, l_shift2, l_scale2, l_gate2 = ctx_mod.chunk(6, dim=-1)
    layout_hat = layer_norm(layout_stream) * (1 + l_scale1) + l_shift1

    sums = torch.zeros_like(img)
    counts = torch.zeros(img.shape[:2], dtype=img.dtype, device=img.device)
    layout_attn = torch.zeros_like(layout_stream)
    for k, (row, tokens) in enumerate(zip(rows, token_indices)):
        hidden = img_hat[row, tokens]
        q, kk, v = (_split_heads(module(f"attn.to_{p}", hidden), heads) for p in "qkv")
        lq, lk, lv = (_split_heads(module(f"attn.add_{p}_proj", layout_hat[k:k + 1]), heads) for p in "qkv")
        if flux:
            q, kk = rms(q, block.img_q_scale), rms(kk, block.img_k_scale)
            lq, lk = rms(lq, block.ctx_q_scale), rms(lk, block.ctx_k_scale)
            query, key, value = torch.cat([lq, q], 2), torch.cat([lk, kk], 2), torch.cat([lv, v], 2)
        else:
            query, key, value = torch.cat([q, lq], 2), torch.cat([kk, lk], 2), torch.cat([v, lv], 2)
        if rope is not None:
            cos, sin = rope[k]
            query, key = rotate(query, cos, sin), rotate(key, cos, sin)
        out = F.scaled_dot_product_attention(query, key, value).transpose(1, 2).reshape(-1, block.dim)
        layout_out, img_out = (out[:1], out[1:]) if flux else (out[-1:], out[:-1])
        img_out = module("attn.to_out.0", img_out)
        sums[row, tokens] += layout_scale * block.layout_forward(img_out)
        counts[row, tokens] += 1
        if not block.context_pre_only:
            layout_attn[k] = module("attn.to_add_out", layout_out)[0]
    counts = counts + (counts == 0).to(counts.dtype)
    img = img + gate1[:, None] * sums / counts[..., None]
    ffn_in = layer_norm(img) * (1 + scale2[:, None]) + shift2[:, None]
    img = img + gate2[:, None] * module("ff.net.2", gelu(module("ff.net.0.proj", ffn_in)))
    if block.context_pre_only:
        return img, None
    layout_stream = layout_stream + l_gate1 * layout_attn
    ffn_in = layer_norm(layout_stream) * (1 + l_scale2) + l_shift2
    layout_stream = layout_stream + l_gate2 * module("ff_context.net.2", gelu(module("ff_context.net.0.proj", ffn_in)))
    return img, layout_stream


def loop_single_branch(block: SingleBlock, stream: Tensor, vec: Tensor, layout_stream: Tensor,
                       token_indices: list[Tensor], rows: list[int], layout_scale: float, img_offset: int,
                       rope: Optional[list[tuple[Tensor, Tensor]]] = None) -> Tensor:
    """Spec §9.2. stream [B, T + S, D] ([txt; img]) after the stock block, image tokens from ``img_offset``."""
    def module(name, x):
        return _module(block, _SINGLE_MODULES, name, x)

    heads = block.heads
    img = stream[:, img_offset:]
    sums = torch.zeros_like(img)
    counts = torch.zeros(img.shape[:2], dtype=img.dtype, device=img.device)
    sv = F.silu(vec)
    for k, (row, tokens) in enumerate(zip(rows, token_indices)):
        seq = torch.cat([layout_stream[k:k + 1], img[row, tokens]])
        shift, scale, gate = module("norm.linear", sv[row:row + 1]).chunk(3, dim=-1)
        seq_hat = layer_norm(seq) * (1 + scale) + shift
        q, kk, v = (_split_heads(module(f"attn.to_{p}", seq_hat), heads) for p in "qkv")
        mlp = gelu(module("proj_mlp", seq_hat))
        q, kk = rms(q, block.q_scale), rms(kk, block.k_scale)
        if rope is not None:
            cos, sin = rope[k]
            q, kk = rotate(q, cos, sin), rotate(kk, cos, sin)
        attn = F.scaled_dot_product_attention(q, kk, v).transpose(1, 2).reshape(-1, block.dim)
        out = gate * module("proj_out", torch.cat([attn, mlp], dim=-1))
        sums[row, tokens] += layout_scale * block.layout_forward(out[1:])
        counts[row, tokens] += 1
    counts = counts + (counts == 0).to(counts.dtype)
    return torch.cat([stream[:, :img_offset], img + sums / counts[..., None]], dim=1)
