"""One benchmark case: a block, a layout and random inputs, with the three variants as closures.

(a) ``run_loop``   the per-instance loop of ``loop_baseline.py`` (reference structure);
(b) ``run_branch`` the core's ``joint_block_branch`` / ``single_block_branch`` over ``block.ops()``;
(c) ``run_stock``  the stock block alone.

(a) and (b) get the same post-stock-block image stream, ``vec`` and layout stream; both receive their RoPE tables
precomputed, as both the reference (``layout_rotary``) and the pack (``CallContext.rope``) build them once per
model call. The ``InstanceBatch`` is built once per call (the pack caches it per token grid), outside the timing.
"""
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

import instanceassemble_core.assemble as core_assemble
from instanceassemble_core.lora import with_deltas

from .bench_blocks import JointBlock, SingleBlock, flux_ids, rope_angles, rotation_matrices
from .bench_layouts import Workload
from .loop_baseline import instance_rope, loop_joint_branch, loop_single_branch


def relative_error(actual: Tensor, expected: Tensor) -> float:
    """max |actual − expected| / max |expected|, in float64."""
    actual, expected = actual.double(), expected.double()
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30))


@dataclass
class Case:
    run_loop: Callable[[], object]
    run_branch: Callable[[], object]
    run_stock: Callable[[], object]
    compare: Callable[[object, object], float]   # (a) output, (b) output → max relative error of the branch's effect


def make_case(block, workload: Workload, txt_len: int, layout_scale: float = 1.0, seed: int = 0,
              device="cpu", dtype=torch.float32, token_budget: Optional[int] = None,
              core=core_assemble, wrap=with_deltas) -> Case:
    """Inputs drawn from ``seed``; ``block`` must already be on ``device`` / ``dtype``.

    ``core`` (a module with ``build_instance_batch``, ``InstanceRope``, ``joint_block_branch``,
    ``single_block_branch``) and ``wrap`` (``with_deltas``) default to the pack's core; pass a variant to A/B a
    change of the core in one run."""
    g = torch.Generator().manual_seed(seed)
    dim = block.dim
    grid_h, grid_w = workload.grid
    num_img = grid_h * grid_w
    rows = workload.rows

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device, dtype)

    img, txt, vec = randn(1, num_img, dim), randn(1, txt_len, dim), randn(1, dim)
    layout_stream = randn(workload.num_instances, dim)
    tokens = [t.to(device) for t in workload.token_indices]
    kwargs = {} if token_budget is None else {"token_budget": token_budget}
    batch = core.build_instance_batch(workload.token_indices, rows, device, **kwargs)

    flux_rope = block.kind != "sd3"
    pe = core_rope = loop_rope = None
    if flux_rope:
        pe = rotation_matrices(rope_angles(flux_ids(txt_len, grid_h, grid_w))).to(device)
        layout_ids = torch.cat([torch.zeros(workload.num_instances, 1), workload.positions], dim=1)
        core_rope = core.InstanceRope(img=pe[txt_len + batch.union_tokens],
                                 layout=rotation_matrices(rope_angles(layout_ids)).to(device))
        loop_rope = instance_rope(workload.positions, workload.token_indices, grid_w, device)

    if isinstance(block, SingleBlock):
        stream = torch.cat([txt, img], dim=1)
        ops = block.ops(wrap)

        def run_loop():
            return loop_single_branch(block, stream, vec, layout_stream, tokens, rows, layout_scale, txt_len,
                                      loop_rope)

        def run_branch():
            return core.single_block_branch(ops, stream, vec, layout_stream, batch, layout_scale, txt_len, core_rope)

        def run_stock():
            return block.stock(stream, vec, pe)

        def compare(a, b):
            return relative_error(b - stream, a - stream)
    elif isinstance(block, JointBlock):
        ops = block.ops(wrap)

        def run_loop():
            return loop_joint_branch(block, img, vec, layout_stream, tokens, rows, layout_scale, loop_rope)

        def run_branch():
            return core.joint_block_branch(ops, img, vec, layout_stream, batch, layout_scale, core_rope)

        def run_stock():
            return block.stock(img, txt, vec, pe)

        def compare(a, b):
            error = relative_error(b[0] - img, a[0] - img)
            if a[1] is not None or b[1] is not None:
                error = max(error, relative_error(b[1] - layout_stream, a[1] - layout_stream))
            return error
    else:
        raise TypeError(f"not a benchmark block: {type(block).__name__}")
    return Case(run_loop, run_branch, run_stock, compare)
