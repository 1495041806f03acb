"""Layout encoder: one layout token per box from its dense samples and its instance text
(docs/reference-semantics.md §4).

Parameter names follow the official ``layout_net.*`` keys with the prefix stripped, so
``encoder.load_state_dict({k.removeprefix("layout_net."): v ...})`` loads ``layout.pth`` directly.
"""
import torch
from torch import Tensor, nn

from .geometry import FOURIER_DIM, fourier_features


class TwoLayerMLP(nn.Module):
    """Linear → SiLU → Linear, both Linears with bias (the official ``PixArtAlphaTextProjection``, act "silu")."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int, dtype=None, device=None):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden_features, dtype=dtype, device=device)
        self.linear_2 = nn.Linear(hidden_features, out_features, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(nn.functional.silu(self.linear_1(x)))


class LayoutEncoder(nn.Module):
    """``layout_net``: h0 = linears(cat[text_embedder(pooled), fourier(samples)]).

    Flux: pooled_dim 768, hidden_dim 3072 (linears.linear_1 [1536, 4224]). SD3-medium: 2048 and 1536.
    """

    def __init__(self, pooled_dim: int, hidden_dim: int, dtype=None, device=None):
        super().__init__()
        self.text_embedder = TwoLayerMLP(pooled_dim, hidden_dim, hidden_dim, dtype=dtype, device=device)
        self.linears = TwoLayerMLP(hidden_dim + FOURIER_DIM, hidden_dim // 2, hidden_dim, dtype=dtype, device=device)

    def forward(self, samples: Tensor, pooled: Tensor) -> Tensor:
        """samples [K, 72], pooled [K, P] → layout tokens [K, D], computed in the encoder's weight dtype.

        Only filled slots are passed, so the reference's slot mask (a multiply by 1) is left out.
        """
        dtype = self.linears.linear_1.weight.dtype
        text = self.text_embedder(pooled.to(dtype))
        position = fourier_features(samples.to(dtype))
        return self.linears(torch.cat((text, position), dim=-1))
