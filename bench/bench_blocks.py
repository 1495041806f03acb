"""Random-weight transformer blocks for the benchmarks, built from plain ``torch.nn.Linear`` layers.

Three block kinds, each with the host's fused layer layout (BFL / MMDiT names) and the layout LoRA as
``instanceassemble_core.lora.LowRankDelta`` side paths keyed by their diffusers module names:

- ``JointBlock(kind="flux")``: a Flux double-stream block (qk RMS-norm, RoPE, joint attention [txt; img]);
- ``JointBlock(kind="sd3")``: an SD3-medium joint block (no qk-norm, no RoPE), optionally context-pre-only;
- ``SingleBlock``: a Flux single-stream block (``linear1`` = q|k|v|mlp, ``linear2`` = [attn | mlp] → D).

``stock(...)`` is the stock block, written compactly here (variant (c) of ``instance_attention.py``); ``ops()``
gives the core's ``JointBlockOps`` / ``SingleBlockOps`` over the same layers, wrapped with ``with_deltas`` exactly as
the ComfyUI hosts do (variant (b)). ``loop_baseline.py`` reads the same tensors for variant (a).

Weights are initialised like a trained network (LeCun-normal, biases around 0.1, LoRA B clearly non-zero) so that
a wrong path changes the output well above float32 rounding.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instanceassemble_core.assemble import JointBlockOps, SingleBlockOps
from instanceassemble_core.families import FLUX, SD3, BlockLayout
from instanceassemble_core.lora import LowRankDelta, with_deltas
from instanceassemble_core.weights import LoraDelta

FLUX_AXES = (16, 56, 56)   # Flux RoPE axes (sum = head_dim 128)
ROPE_THETA = 10000
EPS = 1e-6



def _active_shapes(layout: BlockLayout, dim: int) -> dict[str, tuple[int, int]]:
    """(in, out) features of every module whose LoRA the branch switches on, from the family description."""
    return {name: (layout.modules[name][1] * dim, layout.modules[name][0] * dim) for name in layout.active}


def _key(name: str) -> str:
    return name.replace(".", "__")


def _linear(generator: torch.Generator, fan_in: int, fan_out: int, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(fan_out, fan_in, generator=generator) / math.sqrt(fan_in))
        if bias:
            layer.bias.copy_(0.1 + 0.05 * torch.randn(fan_out, generator=generator))
    return layer.requires_grad_(False)


def _delta(generator: torch.Generator, fan_in: int, fan_out: int, rank: int, alpha: float) -> LowRankDelta:
    down = torch.randn(rank, fan_in, generator=generator) / math.sqrt(fan_in)
    up = torch.randn(fan_out, rank, generator=generator) / math.sqrt(rank) * 0.5
    return LowRankDelta(LoraDelta(down=down, up=up, scale=alpha / rank)).requires_grad_(False)


def _scale(generator: torch.Generator, n: int) -> nn.Parameter:
    return nn.Parameter(1.0 + 0.1 * torch.randn(n, generator=generator), requires_grad=False)


def layer_norm(x: Tensor) -> Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=EPS)


def rms_norm(x: Tensor, scale: Tensor) -> Tensor:
    return F.rms_norm(x, (x.shape[-1],), weight=scale, eps=EPS)


def gelu(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


# ---------------------------------------------------------------------------------------------------- RoPE tables

def rope_angles(ids: Tensor, axes=FLUX_AXES, theta: float = ROPE_THETA) -> Tensor:
    """Flux RoPE angles, float64: ids [N, 3] (0, row, col) → [N, head_dim / 2], axis by axis."""
    parts = []
    for axis, dim in enumerate(axes):
        omega = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        parts.append(ids[:, axis].to(torch.float64)[:, None] * omega[None])
    return torch.cat(parts, dim=-1)


def rotation_matrices(angles: Tensor) -> Tensor:
    """ComfyUI's ``pe`` form: [N, d/2] angles → [N, d/2, 2, 2] float32 rotations ((cos, -sin), (sin, cos))."""
    cos, sin = angles.cos(), angles.sin()
    return torch.stack([cos, -sin, sin, cos], dim=-1).reshape(*angles.shape, 2, 2).float()


def flux_ids(txt_len: int, grid_h: int, grid_w: int) -> Tensor:
    """[txt_len + grid_h·grid_w, 3]: text ids all zero, image ids (0, row, col) row-major."""
    ids = torch.zeros(txt_len + grid_h * grid_w, 3)
    tokens = torch.arange(grid_h * grid_w)
    ids[txt_len:, 1] = (tokens // grid_w).float()
    ids[txt_len:, 2] = (tokens % grid_w).float()
    return ids


def apply_pe(x: Tensor, pe: Tensor) -> Tensor:
    """x [B, H, N, d], pe [N, d/2, 2, 2] → rotated x (float32 math, cast back), ComfyUI's ``apply_rope``."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    out = pe[..., 0] * pairs[..., 0] + pe[..., 1] * pairs[..., 1]
    return out.reshape(x.shape).type_as(x)


def _heads(x: Tensor, heads: int) -> Tensor:
    """[B, N, D] → [B, H, N, d]."""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _merge(x: Tensor) -> Tensor:
    """[B, H, N, d] → [B, N, D]."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


# ---------------------------------------------------------------------------------------------------- joint blocks

class JointBlock(nn.Module):
    """A Flux double block (``kind="flux"``) or an SD3 joint block (``kind="sd3"``) with its layout weights.

    Layers (host names): ``img_mod``/``ctx_mod`` (D → 6D, or 2D for a context-pre-only block), ``img_qkv``/
    ``ctx_qkv`` (D → 3D), ``img_proj``/``ctx_proj`` (D → D), ``img_fc1``/``img_fc2`` and ``ctx_fc1``/``ctx_fc2``
    (D → 4D → D), ``layout_forward`` (D → D); Flux adds per-head RMS-norm scales. ``deltas``: the layout LoRA on the
    modules the official code switches on (spec §8), keyed by diffusers name.
    """

    def __init__(self, kind: str, dim: int, heads: int, rank: int = 16, context_pre_only: bool = False,
                 seed: int = 0):
        super().__init__()
        if kind not in ("flux", "sd3"):
            raise ValueError(f"kind must be 'flux' or 'sd3', not {kind!r}")
        if context_pre_only and kind != "sd3":
            raise ValueError("only the last SD3 block is context-pre-only")
        g = torch.Generator().manual_seed(seed)
        self.kind, self.dim, self.heads = kind, dim, heads
        self.context_pre_only = context_pre_only
        head_dim, mlp = dim // heads, 4 * dim
        self.img_mod = _linear(g, dim, 6 * dim)
        self.ctx_mod = _linear(g, dim, (2 if context_pre_only else 6) * dim)
        self.img_qkv = _linear(g, dim, 3 * dim)
        self.ctx_qkv = _linear(g, dim, 3 * dim)
        self.img_proj = _linear(g, dim, dim)
        self.img_fc1, self.img_fc2 = _linear(g, dim, mlp), _linear(g, mlp, dim)
        self.ctx_proj = None if context_pre_only else _linear(g, dim, dim)
        self.ctx_fc1 = None if context_pre_only else _linear(g, dim, mlp)
        self.ctx_fc2 = None if context_pre_only else _linear(g, mlp, dim)
        self.layout_forward = _linear(g, dim, dim)
        self.qk_norm = kind == "flux"
        if self.qk_norm:
            self.img_q_scale, self.img_k_scale = _scale(g, head_dim), _scale(g, head_dim)
            self.ctx_q_scale, self.ctx_k_scale = _scale(g, head_dim), _scale(g, head_dim)
        alpha = 2.0 * rank
        shapes = _active_shapes(SD3.last_joint if context_pre_only else FLUX.joint, dim)
        self.deltas = nn.ModuleDict({_key(name): _delta(g, i, o, rank, alpha) for name, (i, o) in shapes.items()})

    def delta(self, name: str) -> Optional[LowRankDelta]:
        return self.deltas[_key(name)] if _key(name) in self.deltas else None

    # -- (c) the stock block
    def stock(self, img: Tensor, txt: Tensor, vec: Tensor, pe: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """img [B, S, D], txt [B, T, D], vec [B, D], pe [T + S, d/2, 2, 2] (Flux) → (img, txt)."""
        heads = self.heads
        sv = F.silu(vec)
        i_sh1, i_sc1, i_g1, i_sh2, i_sc2, i_g2 = self.img_mod(sv)[:, None].chunk(6, dim=-1)
        c_mod = self.ctx_mod(sv)[:, None]
        if self.context_pre_only:
            c_sh1, c_sc1 = c_mod.chunk(2, dim=-1)
        else:
            c_sh1, c_sc1, c_g1, c_sh2, c_sc2, c_g2 = c_mod.chunk(6, dim=-1)
        iq, ik, iv = (_heads(t, heads) for t in self.img_qkv(layer_norm(img) * (1 + i_sc1) + i_sh1).chunk(3, -1))
        cq, ck, cv = (_heads(t, heads) for t in self.ctx_qkv(layer_norm(txt) * (1 + c_sc1) + c_sh1).chunk(3, -1))
        if self.qk_norm:
            iq, ik = rms_norm(iq, self.img_q_scale).to(iv), rms_norm(ik, self.img_k_scale).to(iv)
            cq, ck = rms_norm(cq, self.ctx_q_scale).to(cv), rms_norm(ck, self.ctx_k_scale).to(cv)
        q, k, v = torch.cat([cq, iq], 2), torch.cat([ck, ik], 2), torch.cat([cv, iv], 2)
        if pe is not None:
            q, k = apply_pe(q, pe), apply_pe(k, pe)
        attn = _merge(F.scaled_dot_product_attention(q, k, v))
        txt_len = txt.shape[1]
        img = img + i_g1 * self.img_proj(attn[:, txt_len:])
        img = img + i_g2 * self.img_fc2(gelu(self.img_fc1(layer_norm(img) * (1 + i_sc2) + i_sh2)))
        if not self.context_pre_only:
            txt = txt + c_g1 * self.ctx_proj(attn[:, :txt_len])
            txt = txt + c_g2 * self.ctx_fc2(gelu(self.ctx_fc1(layer_norm(txt) * (1 + c_sc2) + c_sh2)))
        return img, txt

    # -- (b) the core's view of the same layers, as the ComfyUI hosts build it
    def ops(self, wrap=with_deltas) -> JointBlockOps:
        """``wrap``: how a host layer gets its deltas (default the core's ``lora.with_deltas``)."""
        dim = self.dim

        def lora(layer, *targets):
            return wrap(layer, [(offset, self.delta(name)) for offset, name in targets
                                       if self.delta(name) is not None])

        def mlp(fc1, fc2, fc2_name):
            fc2_lora = lora(fc2, (0, fc2_name))
            return lambda x: fc2_lora(gelu(fc1(x)))

        qk_img = qk_ctx = None
        if self.qk_norm:
            def qk_img(q, k):
                return rms_norm(q, self.img_q_scale).to(q), rms_norm(k, self.img_k_scale).to(k)

            def qk_ctx(q, k):
                return rms_norm(q, self.ctx_q_scale).to(q), rms_norm(k, self.ctx_k_scale).to(k)
        return JointBlockOps(
            num_heads=self.heads,
            img_modulation=lora(self.img_mod, (0, "norm1.linear")),
            ctx_modulation=lora(self.ctx_mod, (0, "norm1_context.linear")),
            img_qkv=lora(self.img_qkv, (0, "attn.to_q"), (dim, "attn.to_k"), (2 * dim, "attn.to_v")),
            ctx_qkv=lora(self.ctx_qkv, (0, "attn.add_q_proj"), (dim, "attn.add_k_proj"), (2 * dim, "attn.add_v_proj")),
            img_out=lora(self.img_proj, (0, "attn.to_out.0")),
            ctx_out=None if self.context_pre_only else lora(self.ctx_proj, (0, "attn.to_add_out")),
            img_mlp=mlp(self.img_fc1, self.img_fc2, "ff.net.2"),
            ctx_mlp=None if self.context_pre_only else mlp(self.ctx_fc1, self.ctx_fc2, "ff_context.net.2"),
            layout_forward=self.layout_forward,
            img_qk_norm=qk_img,
            ctx_qk_norm=qk_ctx,
        )


# ---------------------------------------------------------------------------------------------------- single block

class SingleBlock(nn.Module):
    """A Flux single-stream block: ``modulation`` (D → 3D), ``linear1`` (D → 3D + 4D, rows q|k|v|mlp),
    ``linear2`` (D + 4D → D), per-head RMS-norm scales, ``layout_forward``; LoRA on ``norm.linear``,
    ``attn.to_{q,k,v}``, ``proj_mlp`` and ``proj_out``."""

    def __init__(self, dim: int, heads: int, rank: int = 16, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.kind, self.dim, self.heads = "flux-single", dim, heads
        head_dim, mlp = dim // heads, 4 * dim
        self.mlp_dim = mlp
        self.modulation = _linear(g, dim, 3 * dim)
        self.linear1 = _linear(g, dim, 3 * dim + mlp)
        self.linear2 = _linear(g, dim + mlp, dim)
        self.q_scale, self.k_scale = _scale(g, head_dim), _scale(g, head_dim)
        self.layout_forward = _linear(g, dim, dim)
        alpha = 2.0 * rank
        shapes = _active_shapes(FLUX.single, dim)
        self.deltas = nn.ModuleDict({_key(name): _delta(g, i, o, rank, alpha) for name, (i, o) in shapes.items()})

    def delta(self, name: str) -> Optional[LowRankDelta]:
        return self.deltas[_key(name)] if _key(name) in self.deltas else None

    def stock(self, stream: Tensor, vec: Tensor, pe: Optional[Tensor] = None) -> Tensor:
        """stream [B, T + S, D] ([txt; img]), vec [B, D], pe [T + S, d/2, 2, 2] → stream."""
        shift, scale, gate = self.modulation(F.silu(vec))[:, None].chunk(3, dim=-1)
        hidden = self.linear1(layer_norm(stream) * (1 + scale) + shift)
        qkv, mlp = hidden.split([3 * self.dim, self.mlp_dim], dim=-1)
        q, k, v = (_heads(t, self.heads) for t in qkv.chunk(3, dim=-1))
        q, k = rms_norm(q, self.q_scale).to(v), rms_norm(k, self.k_scale).to(v)
        if pe is not None:
            q, k = apply_pe(q, pe), apply_pe(k, pe)
        attn = _merge(F.scaled_dot_product_attention(q, k, v))
        return stream + gate * self.linear2(torch.cat([attn, gelu(mlp)], dim=-1))

    def ops(self, wrap=with_deltas) -> SingleBlockOps:
        dim = self.dim

        def lora(layer, *targets):
            return wrap(layer, [(offset, self.delta(name)) for offset, name in targets])

        def qk_norm(q, k):
            return rms_norm(q, self.q_scale).to(q), rms_norm(k, self.k_scale).to(k)
        return SingleBlockOps(
            num_heads=self.heads,
            modulation=lora(self.modulation, (0, "norm.linear")),
            linear1=lora(self.linear1, (0, "attn.to_q"), (dim, "attn.to_k"), (2 * dim, "attn.to_v"),
                         (3 * dim, "proj_mlp")),
            linear2=lora(self.linear2, (0, "proj_out")),
            layout_forward=self.layout_forward,
            qk_norm=qk_norm,
        )
