"""The per-call contract between the patch's wrappers and the hosts' block replacements.

One grounded model call = one ``CallContext``, built by the APPLY_MODEL wrapper and handed to every layout block
through the call's own transformer options (never on modules or in globals, so two graphs with different layouts
on the same model cannot see each other's state). Everything fixed for the patch (branch weights, layout_scale,
grounding schedule) lives on the patch and its block replacements, not here.
"""
import uuid
from dataclasses import dataclass, field
from typing import Callable, Generic, Optional, TypeVar

from torch import Tensor

from ..instanceassemble_core.assemble import InstanceBatch, InstanceRope

T = TypeVar("T")


class LayoutStream:
    """The layout tokens [K, D] of one model call, carried from layout block to layout block (§9.1 step 7,
    §13.11): each layout block takes the current tokens and hands its output on; SD3's last block, whose context
    is pre-only, ends the stream (None)."""

    def __init__(self, tokens: Tensor):
        self._tokens: Optional[Tensor] = tokens

    def take(self) -> Optional[Tensor]:
        return self._tokens

    def hand_on(self, tokens: Optional[Tensor]) -> None:
        self._tokens = tokens


class OncePerCall(Generic[T]):
    """A value built by the first layout block that needs it and shared by the later blocks of the same call
    (the Flux per-instance RoPE tables, which need the model's own ``pe``, §9.4)."""

    def __init__(self):
        self._value: Optional[T] = None

    def get(self, build: Callable[[], T]) -> T:
        if self._value is None:
            self._value = build()
        return self._value


@dataclass(frozen=True)
class CallContext:
    """What the layout blocks of one grounded model call share.

    batch: where the K instances live in this call's batch rows and token grid.
    layout_positions: [K, 2] (row, col) of each layout token, for Flux RoPE.
    txt_len: text tokens ahead of the image tokens in the joint stream.
    image_tokens: tokens of the generated image; reference-latent tokens (Kontext) may follow them.
    stream: the layout stream, rebuilt from the layout encoder at every call.
    rope: the per-instance rotations (Flux), built once per call.
    """
    batch: InstanceBatch
    layout_positions: Tensor
    txt_len: int
    image_tokens: int
    stream: LayoutStream
    rope: OncePerCall[InstanceRope] = field(default_factory=OncePerCall)


@dataclass(frozen=True)
class OptionKeys:
    """The transformer-options keys of one patch, unique per InstanceAssembleApply node (two patched models in
    one graph, or a patch chained on a patched model, never read each other's entries)."""
    steps: str      # SAMPLER_SAMPLE → PREDICT_NOISE: the StepTracker of the running sampler call
    grounded: str   # PREDICT_NOISE → APPLY_MODEL: whether this model evaluation is grounded (bool)
    context: str    # APPLY_MODEL → block replacements: the CallContext of a grounded call

    @classmethod
    def new(cls) -> "OptionKeys":
        token = uuid.uuid4().hex[:12]
        return cls(f"instanceassemble_steps_{token}", f"instanceassemble_grounded_{token}",
                   f"instanceassemble_context_{token}")


def call_contexts(transformer_options: dict) -> list[CallContext]:
    """The CallContexts a model call carries (one per InstanceAssemble patch grounding this call)."""
    return [value for value in transformer_options.values() if isinstance(value, CallContext)]
