"""Flux.1 host: double blocks {0, 3, …, 18} and single block 0 of ``comfy.ldm.flux.model.Flux``
(docs/reference-semantics.md §9.1, §9.2).

Which diffusers module's LoRA lands on which of BFL's fused layers, at which rows (§13.6), is ``FLUX``'s
``HostSlot`` table in ``instanceassemble_core.families``.

Reference latents (Kontext-style ``ref_latents``) add image tokens after the generated image's tokens; the branch
works on the generated image's tokens only and hands the reference tokens back as the stock block left them.
"""
from functools import partial
from typing import Optional

import torch
from torch import Tensor

from ...instanceassemble_core.assemble import (InstanceRope, JointBlockOps, SingleBlockOps, joint_block_branch,
                                               single_block_branch)
from ...instanceassemble_core.branch import InstanceBranch
from ...instanceassemble_core.families import FLUX
from ..call_context import CallContext
from .base import BlockPatch, Host, cast_linear, feed_forward, lora_layer


class FluxHost(Host):
    family = FLUX

    @staticmethod
    def matches(diffusion_model) -> bool:
        from comfy.ldm.flux.model import Flux
        return type(diffusion_model) is Flux

    @property
    def hidden_dim(self) -> int:
        return self.model.hidden_size

    @property
    def num_double_blocks(self) -> int:
        return len(self.model.double_blocks)

    @property
    def num_single_blocks(self) -> int:
        return len(self.model.single_blocks)

    def block_patches(self, branch: InstanceBranch, layout_scale: float,
                      context_key: str) -> dict[tuple[str, int], BlockPatch]:
        patches = {}
        for index in branch.layout_blocks("transformer_blocks"):
            ops = self._double_ops(branch, index)
            patches[("double_block", index)] = BlockPatch(context_key, self._run_double(ops, layout_scale))
        for index in branch.layout_blocks("single_transformer_blocks"):
            ops = self._single_ops(branch, index)
            patches[("single_block", index)] = BlockPatch(context_key, self._run_single(ops, layout_scale))
        return patches

    def _double_ops(self, branch: InstanceBranch, index: int) -> JointBlockOps:
        block, path = self.model.double_blocks[index], f"transformer_blocks.{index}"
        lora = partial(lora_layer, branch, FLUX.joint, block, path, self.hidden_dim)
        return JointBlockOps(
            num_heads=block.num_heads,
            img_modulation=lora("img_mod.lin"),
            ctx_modulation=lora("txt_mod.lin"),
            img_qkv=lora("img_attn.qkv"),
            ctx_qkv=lora("txt_attn.qkv"),
            img_out=lora("img_attn.proj"),
            ctx_out=lora("txt_attn.proj"),
            img_mlp=feed_forward(block.img_mlp[0], block.img_mlp[1], lora("img_mlp.2")),
            ctx_mlp=feed_forward(block.txt_mlp[0], block.txt_mlp[1], lora("txt_mlp.2")),
            layout_forward=cast_linear(branch.layout_forward(path)),
            img_qk_norm=lambda q, k: block.img_attn.norm(q, k, q),
            ctx_qk_norm=lambda q, k: block.txt_attn.norm(q, k, q),
        )

    def _single_ops(self, branch: InstanceBranch, index: int) -> SingleBlockOps:
        block, path = self.model.single_blocks[index], f"single_transformer_blocks.{index}"
        lora = partial(lora_layer, branch, FLUX.single, block, path, self.hidden_dim)
        return SingleBlockOps(
            num_heads=block.num_heads,
            modulation=lora("modulation.lin"),
            linear1=lora("linear1"),
            linear2=lora("linear2"),
            layout_forward=cast_linear(branch.layout_forward(path)),
            qk_norm=lambda q, k: block.norm(q, k, q),
        )

    def _run_double(self, ops: JointBlockOps, layout_scale: float):
        def run(args: dict, out: dict, context: CallContext) -> dict:
            rope = self.instance_rope(context, args["pe"])
            img, references = out["img"][:, :context.image_tokens], out["img"][:, context.image_tokens:]
            img, layout_stream = joint_block_branch(ops, img, args["vec"], context.stream.take(),
                                                    context.batch, layout_scale, rope)
            context.stream.hand_on(layout_stream)
            return {"img": torch.cat([img, references], dim=1) if references.shape[1] else img, "txt": out["txt"]}
        return run

    def _run_single(self, ops: SingleBlockOps, layout_scale: float):
        def run(args: dict, out: dict, context: CallContext) -> dict:
            rope = self.instance_rope(context, args["pe"])
            return {"img": single_block_branch(ops, out["img"], args["vec"], context.stream.take(), context.batch,
                                               layout_scale, context.txt_len, rope)}
        return run

    def instance_rope(self, context: CallContext, pe: Optional[Tensor]) -> Optional[InstanceRope]:
        """Per-instance rotations (§6, §13.5): the layout token at its box centre (0, row, col), image tokens
        at their true positions, gathered from the model's own ``pe`` [B|1, 1, txt + img, d/2, 2, 2]."""
        if pe is None:
            return None

        def build() -> InstanceRope:
            batch = context.batch
            rows = batch.union_rows if pe.shape[0] > 1 else torch.zeros_like(batch.union_rows)
            img_rotation = pe[rows, 0, context.txt_len + batch.union_tokens]
            ids = torch.cat([torch.zeros_like(context.layout_positions[:, :1]), context.layout_positions], dim=-1)
            layout_rotation = self.model.pe_embedder(ids[None].to(pe.device))[0, 0]
            return InstanceRope(img=img_rotation, layout=layout_rotation.to(pe.dtype))
        return context.rope.get(build)
