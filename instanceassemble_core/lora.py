"""The layout LoRA as a side path: low-rank deltas added next to a host layer's own output, never merged.

Hosts fuse projections (Flux ``qkv`` holds q|k|v rows, ``linear1`` holds q|k|v|mlp rows), so one host layer can
carry several deltas, each writing its own slice of output rows.
"""
from typing import Callable, Sequence

from torch import Tensor, nn

from .weights import LoraDelta


class LowRankDelta(nn.Module):
    """``scale · (B (A x) + b)`` for one diffusers module: A [r, in], B [out, r], optional b [out]."""

    def __init__(self, delta: LoraDelta):
        super().__init__()
        self.down = nn.Parameter(delta.down.clone(), requires_grad=False)
        self.up = nn.Parameter(delta.up.clone(), requires_grad=False)
        self.up_bias = None if delta.up_bias is None else nn.Parameter(delta.up_bias.clone(), requires_grad=False)
        self.scale = float(delta.scale)

    @property
    def out_features(self) -> int:
        return self.up.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        """x [..., in] → delta [..., out]."""
        bias = None if self.up_bias is None else self.up_bias.to(x)
        h = nn.functional.linear(nn.functional.linear(x, self.down.to(x)), self.up.to(x), bias)
        return h * self.scale


def with_deltas(base: Callable[[Tensor], Tensor], deltas: Sequence[tuple[int, LowRankDelta]]) -> Callable[[Tensor], Tensor]:
    """Wrap a host layer: ``y = base(x)``, then each delta adds into output rows ``[offset, offset + out)``.

    ``base`` is called as the host calls it, so weight patches (style LoRAs), low-VRAM casting and fp8 weights
    keep working; the host's weights are never touched.
    """
    if not deltas:
        return base

    def forward(x: Tensor) -> Tensor:
        y = base(x)  # a fresh output: its row slices take the deltas in place
        for offset, delta in deltas:
            y[..., offset:offset + delta.out_features] += delta(x).to(y.dtype)
        return y

    return forward
