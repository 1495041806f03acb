"""SD3-medium host: every joint block of ComfyUI's MMDiT (docs/reference-semantics.md §9.3). No RoPE and no qk-norm;
the last block's context stream is pre-only, so the layout stream ends there. The CFG rows without a layout still
get the LoRA-modulated extra feed-forward pass, exactly as the reference's [uncond, cond] batch does."""
from torch import nn

from ...instanceassemble_core.assemble import JointBlockOps, joint_block_branch
from ...instanceassemble_core.branch import InstanceBranch
from .base import BlockPatch, FamilyError, Host, cast_linear, feed_forward, lora_linear


class SD3Host(Host):
    family = "sd3"

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

    def block_patches(self, branch: InstanceBranch, state_key: str) -> dict[tuple[str, int], BlockPatch]:
        return {("double_block", index): BlockPatch(state_key, self._run(self._ops(branch, index)))
                for index in branch.layout_blocks("transformer_blocks")}

    def _ops(self, branch: InstanceBranch, index: int) -> JointBlockOps:
        block, path, width = self.model.joint_blocks[index], f"transformer_blocks.{index}", self.hidden_dim
        x_block, context_block = block.x_block, block.context_block
        context_pre_only = context_block.pre_only
        return JointBlockOps(
            num_heads=x_block.attn.num_heads,
            img_modulation=lora_linear(branch, path, x_block.adaLN_modulation[1], (0, "norm1.linear")),
            ctx_modulation=lora_linear(branch, path, context_block.adaLN_modulation[1], (0, "norm1_context.linear")),
            img_qkv=lora_linear(branch, path, x_block.attn.qkv,
                                (0, "attn.to_q"), (width, "attn.to_k"), (2 * width, "attn.to_v")),
            ctx_qkv=lora_linear(branch, path, context_block.attn.qkv,
                                (0, "attn.add_q_proj"), (width, "attn.add_k_proj"), (2 * width, "attn.add_v_proj")),
            img_out=lora_linear(branch, path, x_block.attn.proj, (0, "attn.to_out.0")),
            ctx_out=None if context_pre_only else lora_linear(branch, path, context_block.attn.proj,
                                                              (0, "attn.to_add_out")),
            img_mlp=feed_forward(x_block.mlp.fc1, x_block.mlp.act,
                                 lora_linear(branch, path, x_block.mlp.fc2, (0, "ff.net.2"))),
            ctx_mlp=None if context_pre_only else feed_forward(
                context_block.mlp.fc1, context_block.mlp.act,
                lora_linear(branch, path, context_block.mlp.fc2, (0, "ff_context.net.2"))),
            layout_forward=cast_linear(branch.layout_forward(path)),
        )

    @staticmethod
    def _run(ops: JointBlockOps):
        def run(args: dict, out: dict, state) -> dict:
            img, state.layout_stream = joint_block_branch(ops, out["img"], args["vec"], state.layout_stream,
                                                          state.batch, state.layout_scale)
            return {"img": img, "txt": out["txt"]}
        return run

