"""SD3-medium host: every joint block of ComfyUI's MMDiT (docs/reference-semantics.md §9.3). No RoPE and no qk-norm;
the last block's context stream is pre-only, so the layout stream ends there. The CFG rows without a layout still
get the LoRA-modulated extra feed-forward pass, exactly as the reference's [uncond, cond] batch does."""
from functools import partial

from torch import nn

from ...instanceassemble_core.assemble import JointBlockOps, joint_block_branch
from ...instanceassemble_core.branch import InstanceBranch
from ...instanceassemble_core.families import SD3
from ..call_context import CallContext
from .base import BlockPatch, FamilyError, Host, cast_linear, feed_forward, lora_layer


class SD3Host(Host):
    family = SD3

    def __init__(self, diffusion_model):
        super().__init__(diffusion_model)
        first = diffusion_model.joint_blocks[0]
        if (first.x_block.x_block_self_attn or not isinstance(first.x_block.attn.ln_q, nn.Identity)
                or not isinstance(first.context_block.attn.ln_q, nn.Identity)):
            raise FamilyError(
                "the model is an SD3.5 MMDiT (qk-norm / dual attention blocks); the official InstanceAssemble "
                "weights exist for SD3-medium and Flux.1 only. Load SD3-medium (sd3_medium.safetensors) or a "
                "Flux.1 model.")

    @staticmethod
    def matches(diffusion_model) -> bool:
        from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT
        return isinstance(diffusion_model, MMDiT)

    @property
    def hidden_dim(self) -> int:
        return self.model.joint_blocks[0].x_block.attn.qkv.in_features

    @property
    def num_double_blocks(self) -> int:
        return len(self.model.joint_blocks)

    def block_patches(self, branch: InstanceBranch, layout_scale: float,
                      context_key: str) -> dict[tuple[str, int], BlockPatch]:
        return {("double_block", index): BlockPatch(context_key, self._run(self._ops(branch, index), layout_scale))
                for index in branch.layout_blocks("transformer_blocks")}

    def _ops(self, branch: InstanceBranch, index: int) -> JointBlockOps:
        block, path = self.model.joint_blocks[index], f"transformer_blocks.{index}"
        x_block, context_block = block.x_block, block.context_block
        context_pre_only = context_block.pre_only
        layout = SD3.last_joint if context_pre_only else SD3.joint
        lora = partial(lora_layer, branch, layout, block, path, self.hidden_dim)
        return JointBlockOps(
            num_heads=x_block.attn.num_heads,
            img_modulation=lora("x_block.adaLN_modulation.1"),
            ctx_modulation=lora("context_block.adaLN_modulation.1"),
            img_qkv=lora("x_block.attn.qkv"),
            ctx_qkv=lora("context_block.attn.qkv"),
            img_out=lora("x_block.attn.proj"),
            ctx_out=None if context_pre_only else lora("context_block.attn.proj"),
            img_mlp=feed_forward(x_block.mlp.fc1, x_block.mlp.act, lora("x_block.mlp.fc2")),
            ctx_mlp=None if context_pre_only else feed_forward(context_block.mlp.fc1, context_block.mlp.act,
                                                               lora("context_block.mlp.fc2")),
            layout_forward=cast_linear(branch.layout_forward(path)),
        )

    @staticmethod
    def _run(ops: JointBlockOps, layout_scale: float):
        def run(args: dict, out: dict, context: CallContext) -> dict:
            img, layout_stream = joint_block_branch(ops, out["img"], args["vec"], context.stream.take(),
                                                    context.batch, layout_scale)
            context.stream.hand_on(layout_stream)
            return {"img": img, "txt": out["txt"]}
        return run

