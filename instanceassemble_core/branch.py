"""Every trained tensor of the instance branch in one ``nn.Module``: layout encoder, per-block ``layout_forward``
and the layout LoRA. Hosts move it with the model (device, dtype) and read its parts by diffusers path."""
from typing import Optional

import torch
from torch import nn

from .encoder import LayoutEncoder
from .families import FAMILIES
from .lora import LowRankDelta
from .weights import InstanceAssembleWeights, LoraDelta


def _key(path: str) -> str:
    return path.replace(".", "__")  # ModuleDict keys cannot hold dots


def _split_block(path: str) -> tuple[str, str]:
    """'transformer_blocks.3.attn.to_q' → ('transformer_blocks.3', 'attn.to_q')."""
    kind, index, module = path.split(".", 2)
    return f"{kind}.{index}", module


def _swap_halves(delta: LoraDelta) -> LoraDelta:
    """(scale, shift) rows → (shift, scale) rows."""
    def swap(t):
        return None if t is None else torch.cat(t.chunk(2, dim=0)[::-1], dim=0)
    return LoraDelta(down=delta.down, up=swap(delta.up), scale=delta.scale, up_bias=swap(delta.up_bias))


class InstanceBranch(nn.Module):
    """The branch's own weights, built from an official-format bundle.

    Modules whose diffusers rows are (scale, shift) while the host's are (shift, scale) (the family's
    ``scale_shift_rows``: SD3's last ``norm1_context.linear``, AdaLayerNormContinuous) get their LoRA rows swapped
    here once (docs/reference-semantics.md §13.7).
    """

    def __init__(self, weights: InstanceAssembleWeights):
        super().__init__()
        self.family = weights.family
        self.hidden_dim = weights.hidden_dim
        self.pooled_dim = weights.pooled_dim
        self.layout_encoder = LayoutEncoder(weights.pooled_dim, weights.hidden_dim)
        self.layout_encoder.load_state_dict(weights.layout_net, strict=True)
        self.layout_forwards = nn.ModuleDict()
        for block, (weight, bias) in weights.layout_forward.items():
            linear = nn.Linear(weight.shape[1], weight.shape[0])
            linear.load_state_dict({"weight": weight, "bias": bias})
            linear.requires_grad_(False)
            self.layout_forwards[_key(block)] = linear
        family = FAMILIES[weights.family]
        last_joint_index = max(weights.double_layout_blocks, default=-1)
        self.deltas = nn.ModuleDict()
        for path, delta in weights.lora.items():
            block, module = _split_block(path)
            swap = module in family.block_layout(block, last_joint_index).scale_shift_rows
            self.deltas[_key(path)] = LowRankDelta(_swap_halves(delta) if swap else delta)
        self.layout_encoder.requires_grad_(False)

    def delta(self, module_path: str) -> Optional[LowRankDelta]:
        """The LoRA delta of a diffusers module path, e.g. ``transformer_blocks.3.attn.to_q``, if the file has one."""
        return self.deltas[_key(module_path)] if _key(module_path) in self.deltas else None

    def layout_blocks(self, prefix: str) -> list[int]:
        """Indices N of the blocks ``prefix.N`` (``transformer_blocks``, ``single_transformer_blocks``) that carry
        the branch, i.e. have a ``layout_forward``."""
        return sorted(int(key.split("__")[1]) for key in self.layout_forwards if key.split("__")[0] == prefix)

    def layout_forward(self, block_path: str) -> nn.Linear:
        return self.layout_forwards[_key(block_path)]

    @property
    def dtype(self) -> torch.dtype:
        return self.layout_encoder.linears.linear_1.weight.dtype
