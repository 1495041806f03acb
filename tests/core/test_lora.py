"""The layout LoRA side path: several deltas on one fused host layer, against the formula written out."""
import torch

from instanceassemble_core.lora import LowRankDelta, with_deltas
from instanceassemble_core.weights import LoraDelta


def test_deltas_add_scaled_low_rank_updates_into_their_rows_only():
    g = torch.Generator().manual_seed(0)
    width, rank = 16, 3
    host = torch.nn.Linear(width, 4 * width)
    host_weight = host.weight.detach().clone()
    parts = [LoraDelta(down=torch.randn(rank, width, generator=g), up=torch.randn(width, rank, generator=g),
                       scale=scale, up_bias=bias)
             for scale, bias in ((0.5, None), (2.0, torch.randn(width, generator=g)), (1.5, None))]
    offsets = (0, width, 3 * width)   # rows [2D, 3D) carry no delta
    calls = []

    def base(x):
        calls.append(x)
        return host(x)

    layer = with_deltas(base, [(offset, LowRankDelta(part)) for offset, part in zip(offsets, parts)])
    x = torch.randn(2, 5, width, generator=g)
    with torch.no_grad():
        out = layer(x)
        expected = host(x)
        for offset, part in zip(offsets, parts):
            delta = x @ part.down.T @ part.up.T + (0 if part.up_bias is None else part.up_bias)
            expected[..., offset:offset + width] += part.scale * delta
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert len(calls) == 1 and torch.equal(host.weight, host_weight)
    torch.testing.assert_close(out[..., 2 * width:3 * width], host(x)[..., 2 * width:3 * width].detach())
