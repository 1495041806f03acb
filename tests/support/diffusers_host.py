"""The core's batched branch hosted by diffusers' own Flux / SD3 blocks, with no ComfyUI code involved.

Plugged into the references' ``branch=`` hook, it replaces the official per-instance loop inside the very same
diffusers model, so the comparison isolates ``instanceassemble_core``: its geometry, layout encoder, LoRA deltas
(from ``InstanceBranch``, keyed by diffusers paths) and batched attention. diffusers' base layers carry peft LoRA
at scale 0 (the stock path); the layout LoRA comes from the core's own deltas.
"""
import torch

from instanceassemble_core.assemble import (InstanceRope, JointBlockOps, SingleBlockOps, build_instance_batch,
                                            joint_block_branch, single_block_branch)
from instanceassemble_core.branch import InstanceBranch
from instanceassemble_core.geometry import box_token_indices, dense_samples, layout_token_positions
from instanceassemble_core.lora import with_deltas


def flux_rotations(ids: torch.Tensor, axes_dim, theta: int = 10000) -> torch.Tensor:
    """BFL-form RoPE rotations [N, d/2, 2, 2] for position ids [N, 3]."""
    parts = []
    for axis, dim in enumerate(axes_dim):
        omega = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles = ids[:, axis, None].double() * omega
        cos, sin = angles.cos(), angles.sin()
        parts.append(torch.stack([cos, -sin, sin, cos], dim=-1).reshape(len(ids), dim // 2, 2, 2))
    return torch.cat(parts, dim=1).float()


class CoreOnDiffusers:
    """layouts: per batch row, a core ``Layout`` or None; pooled: per row, [K_row, P] or None."""

    def __init__(self, branch: InstanceBranch, layouts, pooled, grid, axes_dim=None):
        self.branch = branch
        self.grid = grid
        self.axes_dim = axes_dim
        self.instances = [(row, slot) for row, layout in enumerate(layouts) if layout is not None
                          for slot in range(len(layout.instances))]
        rows = [row for row, _ in self.instances]
        samples = [dense_samples(layout) for layout in layouts if layout is not None]
        self.samples = torch.cat(samples) if samples else torch.zeros(0, 72)
        self.pooled = torch.cat([p for p in pooled if p is not None]) if samples else None
        self.batch = build_instance_batch(box_token_indices(self.samples, *grid), rows, token_budget=64)
        self.layout_positions = layout_token_positions(self.samples, *grid)
        self.encoded = False

    def _stream(self, layout_states):
        """[B, N, D] slots → [K, D] valid instances; the first layout block takes the core encoder's tokens."""
        if not self.encoded:
            self.encoded = True
            return self.branch.layout_encoder(self.samples, self.pooled)
        rows, slots = zip(*self.instances)
        return layout_states[list(rows), list(slots)]

    def _slots(self, layout_states, stream):
        if stream is None:
            return None
        layout_states = layout_states.clone()
        for k, (row, slot) in enumerate(self.instances):
            layout_states[row, slot] = stream[k]
        return layout_states

    def _linear(self, path, *modules_and_names):
        """Host layers (diffusers' separate projections) side by side, each with the core's delta for its path."""
        wrapped = [with_deltas(module, [(0, self.branch.delta(f"{path}.{name}"))] if self.branch.delta(f"{path}.{name}")
                               else []) for module, name in modules_and_names]
        return lambda x: torch.cat([layer(x) for layer in wrapped], dim=-1)

    def _rope(self):
        grid_w = self.grid[1]
        tokens = self.batch.union_tokens
        img_ids = torch.stack([torch.zeros_like(tokens), tokens // grid_w, tokens % grid_w], dim=-1).float()
        layout_ids = torch.cat([torch.zeros(len(self.layout_positions), 1), self.layout_positions], dim=-1)
        return InstanceRope(img=flux_rotations(img_ids, self.axes_dim), layout=flux_rotations(layout_ids, self.axes_dim))

    def _joint_ops(self, path, block, swap_context_modulation=False):
        attn = block.attn
        context_pre_only = attn.to_add_out is None
        ctx_modulation = self._linear(path, (block.norm1_context.linear, "norm1_context.linear"))
        if swap_context_modulation:  # diffusers' AdaLayerNormContinuous rows are (scale, shift); the core's and the
            base = block.norm1_context.linear  # branch's LoRA rows (swapped once in InstanceBranch) are (shift, scale)
            delta = self.branch.delta(f"{path}.norm1_context.linear")
            ctx_modulation = lambda x: torch.cat(base(x).chunk(2, dim=-1)[::-1], dim=-1) + delta(x)  # noqa: E731
        return JointBlockOps(
            num_heads=attn.heads,
            img_modulation=self._linear(path, (block.norm1.linear, "norm1.linear")),
            ctx_modulation=ctx_modulation,
            img_qkv=self._linear(path, (attn.to_q, "attn.to_q"), (attn.to_k, "attn.to_k"), (attn.to_v, "attn.to_v")),
            ctx_qkv=self._linear(path, (attn.add_q_proj, "attn.add_q_proj"), (attn.add_k_proj, "attn.add_k_proj"),
                                 (attn.add_v_proj, "attn.add_v_proj")),
            img_out=self._linear(path, (attn.to_out[0], "attn.to_out.0")),
            ctx_out=None if context_pre_only else self._linear(path, (attn.to_add_out, "attn.to_add_out")),
            img_mlp=lambda x, ff=self._linear(path, (block.ff.net[2], "ff.net.2")): ff(block.ff.net[0](x)),
            ctx_mlp=None if context_pre_only else (
                lambda x, ff=self._linear(path, (block.ff_context.net[2], "ff_context.net.2")):
                ff(block.ff_context.net[0](x))),
            layout_forward=self.branch.layout_forward(path),
            img_qk_norm=None if attn.norm_q is None else (lambda q, k: (attn.norm_q(q), attn.norm_k(k))),
            ctx_qk_norm=None if attn.norm_added_q is None else (lambda q, k: (attn.norm_added_q(q),
                                                                               attn.norm_added_k(k))),
        )

    def double(self, path, block, hidden, layout_states, temb, layout, layout_rotary, layout_scale):
        ops = self._joint_ops(path, block)
        hidden, stream = joint_block_branch(ops, hidden, temb, self._stream(layout_states), self.batch, layout_scale,
                                            self._rope())
        return hidden, self._slots(layout_states, stream)

    def single(self, path, block, hidden, layout_states, temb, layout, layout_rotary, layout_scale):
        attn = block.attn
        ops = SingleBlockOps(
            num_heads=attn.heads,
            modulation=self._linear(path, (block.norm.linear, "norm.linear")),
            linear1=self._linear(path, (attn.to_q, "attn.to_q"), (attn.to_k, "attn.to_k"), (attn.to_v, "attn.to_v"),
                                 (block.proj_mlp, "proj_mlp")),
            linear2=self._linear(path, (block.proj_out, "proj_out")),
            layout_forward=self.branch.layout_forward(path),
            qk_norm=lambda q, k: (attn.norm_q(q), attn.norm_k(k)),
        )
        hidden = single_block_branch(ops, hidden, temb, self._stream(layout_states), self.batch, layout_scale, 0,
                                     self._rope())
        return hidden, layout_states

    def joint(self, path, block, hidden, layout_states, temb, layout, layout_scale):
        ops = self._joint_ops(path, block, swap_context_modulation=block.context_pre_only)
        hidden, stream = joint_block_branch(ops, hidden, temb, self._stream(layout_states), self.batch, layout_scale)
        return hidden, self._slots(layout_states, stream)
