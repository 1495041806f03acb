"""Flux.1 host: double blocks {0, 3, …, 18} and single block 0 of ``comfy.ldm.flux.model.Flux`` (spec §9.1, §9.2).

LoRA mapping onto BFL's fused layers (spec §13.6): ``to_q|to_k|to_v`` are row slices of ``img_attn.qkv``,
``add_{q,k,v}_proj`` of ``txt_attn.qkv``; in the single block ``to_q|to_k|to_v|proj_mlp`` are row slices of
``linear1`` and ``proj_out`` is ``linear2``.

Reference latents (Kontext-style ``ref_latents``) add image tokens after the generated image's tokens; the branch
works on the generated image's tokens only and hands the reference tokens back as the stock block left them.
"""
from typing import Optional

import torch
from torch import Tensor

from ...instanceassemble_core.assemble import (InstanceRope, JointBlockOps, SingleBlockOps, joint_block_branch,
                                               single_block_branch)
from ...instanceassemble_core.branch import InstanceBranch
from .base import BlockPatch, Host, cast_linear, feed_forward, lora_linear


class FluxHost(Host):
    family = "flux"

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

    def block_patches(self, branch: InstanceBranch, state_key: str) -> dict[tuple[str, int], BlockPatch]:
        patches = {}
        for index in branch.layout_blocks("transformer_blocks"):
            ops = self._double_ops(branch, index)
            patches[("double_block", index)] = BlockPatch(state_key, self._run_double(ops))
        for index in branch.layout_blocks("single_transformer_blocks"):
            ops = self._single_ops(branch, index)
            patches[("single_block", index)] = BlockPatch(state_key, self._run_single(ops))
        return patches

    def _double_ops(self, branch: InstanceBranch, index: int) -> JointBlockOps:
        block, path, width = self.model.double_blocks[index], f"transformer_blocks.{index}", self.hidden_dim
        return JointBlockOps(
            num_heads=block.num_heads,
            img_modulation=lora_linear(branch, path, block.img_mod.lin, (0, "norm1.linear")),
            ctx_modulation=lora_linear(branch, path, block.txt_mod.lin, (0, "norm1_context.linear")),
            img_qkv=lora_linear(branch, path, block.img_attn.qkv,
                                (0, "attn.to_q"), (width, "attn.to_k"), (2 * width, "attn.to_v")),
            ctx_qkv=lora_linear(branch, path, block.txt_attn.qkv,
                                (0, "attn.add_q_proj"), (width, "attn.add_k_proj"), (2 * width, "attn.add_v_proj")),
            img_out=lora_linear(branch, path, block.img_attn.proj, (0, "attn.to_out.0")),
            ctx_out=lora_linear(branch, path, block.txt_attn.proj, (0, "attn.to_add_out")),
            img_mlp=feed_forward(block.img_mlp[0], block.img_mlp[1],
                                 lora_linear(branch, path, block.img_mlp[2], (0, "ff.net.2"))),
            ctx_mlp=feed_forward(block.txt_mlp[0], block.txt_mlp[1],
                                 lora_linear(branch, path, block.txt_mlp[2], (0, "ff_context.net.2"))),
            layout_forward=cast_linear(branch.layout_forward(path)),
            img_qk_norm=lambda q, k: block.img_attn.norm(q, k, q),
            ctx_qk_norm=lambda q, k: block.txt_attn.norm(q, k, q),
        )

    def _single_ops(self, branch: InstanceBranch, index: int) -> SingleBlockOps:
        block, path, width = self.model.single_blocks[index], f"single_transformer_blocks.{index}", self.hidden_dim
        return SingleBlockOps(
            num_heads=block.num_heads,
            modulation=lora_linear(branch, path, block.modulation.lin, (0, "norm.linear")),
            linear1=lora_linear(branch, path, block.linear1, (0, "attn.to_q"), (width, "attn.to_k"),
                                (2 * width, "attn.to_v"), (3 * width, "proj_mlp")),
            linear2=lora_linear(branch, path, block.linear2, (0, "proj_out")),
            layout_forward=cast_linear(branch.layout_forward(path)),
            qk_norm=lambda q, k: block.norm(q, k, q),
        )

    def _run_double(self, ops: JointBlockOps):
        def run(args: dict, out: dict, state) -> dict:
            rope = self.instance_rope(state, args["pe"])
            img, references = out["img"][:, :state.image_tokens], out["img"][:, state.image_tokens:]
            img, state.layout_stream = joint_block_branch(ops, img, args["vec"], state.layout_stream,
                                                          state.batch, state.layout_scale, rope)
            return {"img": torch.cat([img, references], dim=1) if references.shape[1] else img, "txt": out["txt"]}
        return run

    def _run_single(self, ops: SingleBlockOps):
        def run(args: dict, out: dict, state) -> dict:
            rope = self.instance_rope(state, args["pe"])
            return {"img": single_block_branch(ops, out["img"], args["vec"], state.layout_stream, state.batch,
                                               state.layout_scale, state.txt_len, rope)}
        return run

    def instance_rope(self, state, pe: Optional[Tensor]) -> Optional[InstanceRope]:
        """Per-instance rotations (spec §6, §13.5): the layout token at its box centre (0, row, col), image tokens
        at their true positions, gathered from the model's own ``pe`` [B|1, 1, txt + img, d/2, 2, 2]."""
        if pe is None:
            return None
        if state.rope is None:
            batch = state.batch
            rows = batch.union_rows if pe.shape[0] > 1 else torch.zeros_like(batch.union_rows)
            img_rotation = pe[rows, 0, state.txt_len + batch.union_tokens]
            ids = torch.cat([torch.zeros_like(state.layout_positions[:, :1]), state.layout_positions], dim=-1)
            layout_rotation = self.model.pe_embedder(ids[None].to(pe.device))[0, 0]
            state.rope = InstanceRope(img=img_rotation, layout=layout_rotation.to(pe.dtype))
        return state.rope
