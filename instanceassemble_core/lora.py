"""The layout LoRA as a side path: low-rank deltas added next to a host layer's own output, never merged.

Hosts fuse projections (Flux ``qkv`` holds q|k|v rows, ``linear1`` holds q|k|v|mlp rows), so one host layer can
carry several deltas, each writing its own slice of output rows.
"""
from typing import Callable, Sequence

import torch
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
    keep working; the host's weights are never touched. The deltas of one layer share their input, so their
    down-projections run as one GEMM ([N, in] → [N, Σr]); each up-projection then accumulates, scaled, straight
    into its rows of the host's fresh output (``addmm_``: no delta-sized temporary, no extra scaling pass).
    """
    if not deltas:
        return base

    def forward(x: Tensor) -> Tensor:
        y = base(x).contiguous()   # a fresh output: its row slices take the deltas in place
        flat_x, flat_y = x.reshape(-1, x.shape[-1]), y.view(-1, y.shape[-1])
        down = torch.cat([delta.down for _, delta in deltas]) if len(deltas) > 1 else deltas[0][1].down
        hidden = nn.functional.linear(flat_x, down.to(x)).to(y.dtype)   # [N, Σr]
        start = 0
        for offset, delta in deltas:
            rank = delta.up.shape[1]
            rows = flat_y[:, offset:offset + delta.out_features]
            rows.addmm_(hidden[:, start:start + rank], delta.up.to(y).t(), alpha=delta.scale)
            if delta.up_bias is not None:
                rows.add_(delta.up_bias.to(y), alpha=delta.scale)
            start += rank
        return y

    return forward
