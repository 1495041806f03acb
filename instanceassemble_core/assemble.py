"""Batched instance-assembling attention: the layout branch of one transformer block (spec §9).

For every valid instance k (a box on one batch row) the image tokens inside its box, T_k, attend jointly with the
instance's layout token through the block's attention weights plus the layout LoRA. The reference loops over
instances and re-projects every token once per box that covers it. Here every per-token map (modulation,
Q/K/V, output projections, ``layout_forward``) runs once over the union of covered tokens; only the attention is
per instance, batched over instances of similar size.

Averaging overlapping boxes before the output projections is exact: ``to_out`` and ``layout_forward`` are affine,
so ``Σ_k f(o_k) / C = f(Σ_k o_k / C)`` for every token covered by C ≥ 1 boxes.

Shapes: B batch rows, S tokens per row, D width, H heads, d = D / H, K instances, U covered (row, token) pairs.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Linear = Callable[[Tensor], Tensor]
QKNorm = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class InstanceChunk:
    """Instances attended together in one padded batch."""
    instances: Tensor          # [Kc] instance ids
    gather: Tensor             # [Kc, 1 + n] rows of [layout tokens (K); covered tokens (U)]: layout id, then K + slot
    scatter: Tensor            # [Kc · (1 + n)] rows of the [U + 1] sum: the layout row and padding → U (dummy)
    key_mask: Optional[Tensor]  # [Kc, 1, 1, 1 + n] bool (layout token first), None when nothing is padded


@dataclass(frozen=True)
class InstanceBatch:
    """Where the K instances of one model call live, computed once per call from geometry alone."""
    rows: Tensor               # [K] batch row of each instance
    union_rows: Tensor         # [U] batch row of each covered token
    union_tokens: Tensor       # [U] image-token index of each covered token, ascending within a row
    union_count: Tensor        # [U] float32, number of instances covering each token (≥ 1)
    chunks: tuple[InstanceChunk, ...]

    @property
    def num_instances(self) -> int:
        return self.rows.numel()

    def flat_index(self, tokens_per_row: int, offset: int = 0) -> Tensor:
        """[U] index of each covered token in a [B · tokens_per_row] flattened stream whose image part starts at
        ``offset`` within each row."""
        return self.union_rows * tokens_per_row + offset + self.union_tokens

    def to(self, device) -> "InstanceBatch":
        def move(t):
            return None if t is None else t.to(device)
        chunks = tuple(InstanceChunk(*(move(getattr(c, f)) for f in ("instances", "gather", "scatter", "key_mask")))
                       for c in self.chunks)
        return InstanceBatch(move(self.rows), move(self.union_rows), move(self.union_tokens),
                             move(self.union_count), chunks)


def build_instance_batch(token_indices: Sequence[Tensor], rows: Sequence[int], device="cpu",
                         token_budget: int = 16384, max_padding: Optional[float] = None,
                         small_width: int = 32) -> InstanceBatch:
    """Index the instances of one call, on ``device``.

    token_indices: per instance, the flat image-token indices of its box ([n_k] long, possibly empty).
    rows: per instance, its batch row. Instances must be ordered batch-major, then by layout slot.
    token_budget: the most query tokens (layout token + padded box tokens) attended in one chunk; bounds the
    memory of the gathered Q/K/V to a few image streams however many boxes overlap.
    max_padding: a chunk holds instances (sorted by size) whose box is at least 1 / max_padding of the chunk's
    widest, so padding costs at most max_padding× gather work and max_padding²× attention work per instance
    (packing the widest box with everything else cost 2–5× the attention in dense and demo layouts). Default:
    1.0 on the CPU, where a chunk more costs nothing, 1.25 on accelerators, where each chunk is kernel launches.
    small_width: chunks of boxes this small (≤ 32 tokens) take any smaller box, padding being cheap there.
    """
    if max_padding is None:
        max_padding = 1.0 if torch.device(device).type == "cpu" else 1.25
    sizes = [int(t.numel()) for t in token_indices]
    rows_t = torch.tensor(list(rows), dtype=torch.long)
    all_tokens = torch.cat([t.long() for t in token_indices]) if sizes else torch.zeros(0, dtype=torch.long)
    all_rows = torch.repeat_interleave(rows_t, torch.tensor(sizes, dtype=torch.long))
    stride = int(all_tokens.max()) + 1 if all_tokens.numel() else 1
    union_key, slot_of_token = torch.unique(all_rows * stride + all_tokens, return_inverse=True)
    union_count = torch.bincount(slot_of_token, minlength=union_key.numel()).float()
    slots_per_instance = torch.split(slot_of_token, sizes)

    order = sorted(range(len(sizes)), key=lambda k: -sizes[k])
    num_instances, num_union = len(sizes), union_key.numel()
    chunks = []
    start = 0
    while start < len(order):
        width = sizes[order[start]]
        capacity = max(1, token_budget // (1 + width))
        narrowest = width / max_padding if width > small_width else -1
        end = start + 1
        while end < len(order) and end - start < capacity and sizes[order[end]] >= narrowest:
            end += 1
        members = order[start:end]
        start = end
        gather = torch.full((len(members), 1 + width), num_instances, dtype=torch.long)
        scatter = torch.full((len(members), 1 + width), num_union, dtype=torch.long)
        valid = torch.zeros(len(members), 1 + width, dtype=torch.bool)
        for i, k in enumerate(members):
            gather[i, 0] = k
            gather[i, 1:1 + sizes[k]] = num_instances + slots_per_instance[k]
            scatter[i, 1:1 + sizes[k]] = slots_per_instance[k]
            valid[i, :1 + sizes[k]] = True
        key_mask = None if bool(valid.all()) else valid[:, None, None, :]
        chunks.append(InstanceChunk(torch.tensor(members, dtype=torch.long), gather, scatter.reshape(-1), key_mask))
    return InstanceBatch(rows_t, union_key // stride, union_key % stride, union_count, tuple(chunks)).to(device)


def apply_rotation(x: Tensor, rotation: Tensor) -> Tensor:
    """Rotary position embedding in Flux's 2×2-rotation form, computed in float32.

    x [N, H, d], rotation [N, d/2, 2, 2] → [N, H, d].
    """
    pairs = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    rotation = rotation[:, None]
    out = rotation[..., 0] * pairs[..., 0] + rotation[..., 1] * pairs[..., 1]
    return out.reshape(x.shape).type_as(x)


def instance_attention(img_q: Tensor, img_k: Tensor, img_v: Tensor, layout_q: Tensor, layout_k: Tensor,
                       layout_v: Tensor, batch: InstanceBatch) -> tuple[Tensor, Tensor]:
    """Attention of each instance over [its layout token; its box tokens], with no text and no other tokens.

    img_q/k/v [U, H, d] for the covered tokens, layout_q/k/v [K, H, d] per instance (norms and RoPE applied).
    Returns the image output averaged over the instances covering each token [U, H·d] and the layout-token
    output of each instance [K, H·d].
    """
    num_tokens, heads, head_dim = img_q.shape
    width = heads * head_dim
    q_all, k_all, v_all = (torch.cat([layout, img]) for layout, img in
                           ((layout_q, img_q), (layout_k, img_k), (layout_v, img_v)))
    img_sum = torch.zeros(num_tokens + 1, width, dtype=torch.float32, device=img_q.device)
    layout_out = img_q.new_empty(batch.num_instances, width)
    for chunk in batch.chunks:
        out = F.scaled_dot_product_attention(q_all[chunk.gather].transpose(1, 2), k_all[chunk.gather].transpose(1, 2),
                                             v_all[chunk.gather].transpose(1, 2), attn_mask=chunk.key_mask)
        out = out.transpose(1, 2).reshape(-1, width)  # [Kc · (1 + n), H·d]
        layout_out[chunk.instances] = out[::chunk.gather.shape[1]]
        img_sum.index_add_(0, chunk.scatter, out.float())
    return (img_sum[:num_tokens] / batch.union_count[:, None]).to(img_q.dtype), layout_out


@dataclass(frozen=True)
class JointBlockOps:
    """A Flux double block or an SD3 joint block, seen through the host's layers with the layout LoRA added.

    ``*_modulation`` take ``silu(vec)`` [B, D] and return [B, 6D] chunked (shift, scale, gate) × 2, or for a
    context-pre-only block [B, 2D] chunked (shift, scale). ``*_qkv`` return rows q|k|v, heads contiguous.
    """
    num_heads: int
    img_modulation: Linear
    ctx_modulation: Linear
    img_qkv: Linear            # [N, D] → [N, 3D]
    ctx_qkv: Linear
    img_out: Linear            # [N, D] → [N, D]
    ctx_out: Optional[Linear]  # None in a context-pre-only block
    img_mlp: Linear            # [N, D] → [N, D], the whole feed-forward
    ctx_mlp: Optional[Linear]
    layout_forward: Linear
    img_qk_norm: Optional[QKNorm] = None   # (q, k) [N, H, d] → (q, k)
    ctx_qk_norm: Optional[QKNorm] = None


@dataclass(frozen=True)
class SingleBlockOps:
    """A Flux single-stream block: ``linear1`` rows q|k|v|mlp, ``linear2`` input [attention D | mlp M]."""
    num_heads: int
    modulation: Linear         # silu(vec) [B, D] → [B, 3D] (shift, scale, gate)
    linear1: Linear            # [N, D] → [N, 3D + M]
    linear2: Linear            # [N, D + M] → [N, D]
    layout_forward: Linear
    qk_norm: Optional[QKNorm] = None


@dataclass(frozen=True)
class InstanceRope:
    """Rotations for the instance attention: image tokens keep their true grid positions."""
    img: Tensor      # [U, d/2, 2, 2] per covered token
    layout: Tensor   # [K, d/2, 2, 2] per instance, at the centre of its box


def _layer_norm(x: Tensor) -> Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return _layer_norm(x) * (1 + scale) + shift


def _of_rows(values: Tensor, rows: Tensor) -> Tensor:
    """Per-row values [B, D] for tokens of the given rows [N]: [N, D], or the [1, D] row itself (broadcast)
    when the batch has one row."""
    return values if values.shape[0] == 1 else values[rows]


def _heads(qkv: Tensor, num_heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """[N, 3D] → q, k, v [N, H, d]."""
    q, k, v = qkv.view(qkv.shape[0], 3, num_heads, -1).unbind(1)
    return q, k, v


def _prepare(qkv: Tensor, num_heads: int, qk_norm: Optional[QKNorm], rotation: Optional[Tensor]):
    q, k, v = _heads(qkv, num_heads)
    if qk_norm is not None:
        q, k = qk_norm(q, k)
    if rotation is not None:
        q, k = apply_rotation(q, rotation), apply_rotation(k, rotation)
    return q, k, v


def joint_block_branch(ops: JointBlockOps, img: Tensor, vec: Tensor, layout_stream: Optional[Tensor],
                       batch: InstanceBatch, layout_scale: float,
                       rope: Optional[InstanceRope] = None) -> tuple[Tensor, Optional[Tensor]]:
    """Spec §9.1 / §9.3 steps 2–6, after the stock block has run.

    img [B, S, D] image stream after the stock block, vec [B, D], layout_stream [K, D].
    Returns the image stream [B, S, D] and the layout stream [K, D] (None after a context-pre-only block).
    Rows without instances (e.g. the unconditional half of a CFG batch) still get the LoRA-modulated extra
    feed-forward pass, as in the reference.
    """
    num_rows, tokens_per_row, width = img.shape
    shift1, scale1, gate1, shift2, scale2, gate2 = ops.img_modulation(F.silu(vec)).chunk(6, dim=-1)
    if batch.num_instances:
        union_rows = batch.union_rows
        flat_index = batch.flat_index(tokens_per_row)
        img_hat = _modulate(img.reshape(-1, width)[flat_index], _of_rows(shift1, union_rows),
                            _of_rows(scale1, union_rows))
        img_q, img_k, img_v = _prepare(ops.img_qkv(img_hat), ops.num_heads, ops.img_qk_norm,
                                       None if rope is None else rope.img)

        ctx_mod = ops.ctx_modulation(F.silu(vec))[batch.rows]
        ctx_pre_only = ops.ctx_out is None
        if ctx_pre_only:
            layout_shift1, layout_scale1 = ctx_mod.chunk(2, dim=-1)
        else:
            layout_shift1, layout_scale1, layout_gate1, layout_shift2, layout_scale2, layout_gate2 = ctx_mod.chunk(6, dim=-1)
        layout_hat = _modulate(layout_stream, layout_shift1, layout_scale1)
        layout_q, layout_k, layout_v = _prepare(ops.ctx_qkv(layout_hat), ops.num_heads, ops.ctx_qk_norm,
                                                None if rope is None else rope.layout)

        img_attn, layout_attn = instance_attention(img_q, img_k, img_v, layout_q, layout_k, layout_v, batch)
        update = ops.layout_forward(ops.img_out(img_attn)) * layout_scale
        img = img.reshape(-1, width).index_add(0, flat_index, _of_rows(gate1, union_rows) * update).view(img.shape)

        if ctx_pre_only:
            layout_stream = None
        else:
            layout_stream = layout_stream + layout_gate1 * ops.ctx_out(layout_attn)
            layout_stream = layout_stream + layout_gate2 * ops.ctx_mlp(
                _modulate(layout_stream, layout_shift2, layout_scale2))

    img = img + gate2[:, None] * ops.img_mlp(_modulate(img, shift2[:, None], scale2[:, None]))
    return img, layout_stream


def single_block_branch(ops: SingleBlockOps, stream: Tensor, vec: Tensor, layout_stream: Tensor,
                        batch: InstanceBatch, layout_scale: float, img_offset: int,
                        rope: Optional[InstanceRope] = None) -> Tensor:
    """Spec §9.2 step 2–3, after the stock single block has run.

    stream [B, S, D] the joint [txt; img] stream, image tokens starting at ``img_offset``; vec [B, D];
    layout_stream [K, D] enters un-normalised. Tokens outside every box are unchanged; there is no extra
    feed-forward pass. The layout-token outputs are never used afterwards, so they are not projected.
    """
    if not batch.num_instances:
        return stream
    num_rows, tokens_per_row, width = stream.shape
    shift, scale, gate = ops.modulation(F.silu(vec)).chunk(3, dim=-1)
    union_rows = batch.union_rows
    flat_index = batch.flat_index(tokens_per_row, img_offset)

    img_hidden = ops.linear1(_modulate(stream.reshape(-1, width)[flat_index], _of_rows(shift, union_rows),
                                        _of_rows(scale, union_rows)))
    img_qkv, img_mlp = img_hidden.split([3 * width, img_hidden.shape[-1] - 3 * width], dim=-1)
    layout_hidden = ops.linear1(_modulate(layout_stream, shift[batch.rows], scale[batch.rows]))
    img_q, img_k, img_v = _prepare(img_qkv, ops.num_heads, ops.qk_norm, None if rope is None else rope.img)
    layout_q, layout_k, layout_v = _prepare(layout_hidden[:, :3 * width], ops.num_heads, ops.qk_norm,
                                            None if rope is None else rope.layout)

    img_attn, _ = instance_attention(img_q, img_k, img_v, layout_q, layout_k, layout_v, batch)
    img_out = _of_rows(gate, union_rows) * ops.linear2(torch.cat([img_attn, F.gelu(img_mlp, approximate="tanh")], dim=-1))
    update = ops.layout_forward(img_out) * layout_scale
    return stream.reshape(-1, width).index_add(0, flat_index, update).view(stream.shape)
