"""What every host shares: the block-replacement object and the LoRA-augmented view of a host layer."""
import operator
from typing import Callable, Optional

import torch
from torch import Tensor

from ...instanceassemble_core.assemble import InstanceRope
from ...instanceassemble_core.branch import InstanceBranch
from ...instanceassemble_core.families import BlockLayout, Family
from ...instanceassemble_core.lora import with_deltas
from ..call_context import CallContext


class FamilyError(ValueError):
    """The model, the weights or the encoded layout belong to different (or unsupported) model families."""


class BlockPatch:
    """A ``patches_replace["dit"]`` entry: run the stock block, then, when this model call is grounded (its
    transformer options hold our CallContext under ``context_key``), the instance branch on the block's output.

    run_branch(args, out, context) -> the block's new output dict.
    """

    def __init__(self, context_key: str, run_branch: Callable[[dict, dict, CallContext], dict]):
        self.context_key = context_key
        self.run_branch = run_branch

    def __call__(self, args: dict, extra: dict) -> dict:
        out = extra["original_block"](args)
        context = (args.get("transformer_options") or {}).get(self.context_key)
        return out if context is None else self.run_branch(args, out, context)

    def __deepcopy__(self, memo):
        return self  # ModelPatcher.clone deep-copies model_options; the patch holds module references


def lora_layer(branch: InstanceBranch, layout: BlockLayout, block, block_path: str, width: int,
               layer: str) -> Callable[[Tensor], Tensor]:
    """The host layer ``layer`` of ``block`` (an attribute path, e.g. "img_attn.qkv") plus the layout-LoRA deltas
    of the diffusers modules that ``layout`` maps onto it, each at its row offset (a multiple of ``width``)."""
    deltas = [(row * width, branch.delta(f"{block_path}.{name}")) for row, name in layout.slots_of(layer)]
    return with_deltas(operator.attrgetter(layer)(block),
                       [(offset, delta) for offset, delta in deltas if delta is not None])


def feed_forward(fc1: Callable, activation: Callable, fc2: Callable) -> Callable[[Tensor], Tensor]:
    return lambda x: fc2(activation(fc1(x)))


class Host:
    """One model family's transformer class. Subclasses define ``family``, ``matches`` and ``block_patches``."""
    family: Family
    patch_size: int = 2

    def __init__(self, diffusion_model):
        self.model = diffusion_model

    @staticmethod
    def matches(diffusion_model) -> bool:
        raise NotImplementedError

    @property
    def hidden_dim(self) -> int:
        raise NotImplementedError

    @property
    def num_double_blocks(self) -> int:
        raise NotImplementedError

    @property
    def num_single_blocks(self) -> int:
        return 0

    def block_patches(self, branch: InstanceBranch, layout_scale: float,
                      context_key: str) -> dict[tuple[str, int], BlockPatch]:
        """One replacement per layout block, keyed as ``patches_replace["dit"]`` is: (block kind, index)."""
        raise NotImplementedError

    def instance_rope(self, context: CallContext, pe: Optional[Tensor]) -> Optional[InstanceRope]:
        return None


def cast_linear(linear: torch.nn.Linear) -> Callable[[Tensor], Tensor]:
    """The branch's own Linear, following the activations' device and dtype if it was not moved with them."""
    def forward(x: Tensor) -> Tensor:
        return torch.nn.functional.linear(x, linear.weight.to(x), linear.bias.to(x))
    return forward
