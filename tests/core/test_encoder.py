"""Layout encoder: official parameter names and shapes, and the forward pass against a manual computation."""
import pytest
import torch
from torch.nn.functional import linear, silu

import reference_layout as ref
from instanceassemble_core import geometry
from instanceassemble_core.encoder import LayoutEncoder
from instanceassemble_core.layout import Instance, Layout

OFFICIAL_SUFFIXES = [f"{mlp}.linear_{i}.{p}" for mlp in ("text_embedder", "linears") for i in (1, 2)
                     for p in ("weight", "bias")]


@pytest.mark.parametrize("pooled_dim, dim, shapes", [
    (768, 3072, [(3072, 768), (3072, 3072), (1536, 4224), (3072, 1536)]),   # Flux
    (2048, 1536, [(1536, 2048), (1536, 1536), (768, 2688), (1536, 768)]),   # SD3-medium
])
def test_official_shapes(pooled_dim, dim, shapes):
    encoder = LayoutEncoder(pooled_dim, dim, device="meta")
    weights = [encoder.get_parameter(f"{mlp}.linear_{i}.weight").shape
               for mlp in ("text_embedder", "linears") for i in (1, 2)]
    assert [tuple(w) for w in weights] == shapes
    assert encoder.linears.linear_2.bias.shape == (dim,)


def official_layout_net(pooled_dim=8, dim=16, seed=0) -> dict:
    """A ``layout.pth``-style state dict with non-trivial values, keys prefixed ``layout_net.``."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {"text_embedder.linear_1": (dim, pooled_dim), "text_embedder.linear_2": (dim, dim),
              "linears.linear_1": (dim // 2, dim + 1152), "linears.linear_2": (dim, dim // 2)}
    state = {}
    for name, (out, inp) in shapes.items():
        state[f"layout_net.{name}.weight"] = torch.randn(out, inp, generator=generator) / inp ** 0.5
        state[f"layout_net.{name}.bias"] = torch.randn(out, generator=generator) * 0.1
    return state


def loaded_encoder(state: dict, dtype=torch.float32) -> LayoutEncoder:
    encoder = LayoutEncoder(8, 16, dtype=dtype)
    encoder.load_state_dict({k.removeprefix("layout_net."): v for k, v in state.items()}, strict=True)
    return encoder


def test_state_dict_keys_are_the_official_names_without_prefix():
    assert sorted(LayoutEncoder(8, 16).state_dict()) == sorted(OFFICIAL_SUFFIXES)


def test_forward_equals_a_manual_computation():
    state = {k.removeprefix("layout_net."): v for k, v in official_layout_net().items()}
    encoder = loaded_encoder(official_layout_net())
    samples = geometry.dense_samples(Layout(64, 32, "", (Instance((0, 0, 32, 32), "a"), Instance((8, 4, 60, 20), "b"))))
    pooled = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))

    def mlp(x, name):
        hidden = silu(linear(x, state[f"{name}.linear_1.weight"], state[f"{name}.linear_1.bias"]))
        return linear(hidden, state[f"{name}.linear_2.weight"], state[f"{name}.linear_2.bias"])

    text = mlp(pooled, "text_embedder")
    freqs = torch.tensor([100 ** (f / 8) for f in range(8)], dtype=torch.float32)
    angles = samples[:, None, :] * freqs[None, :, None]  # [K, 8, 72]
    position = torch.stack((angles.sin(), angles.cos()), dim=2).reshape(2, 1152)  # index f·144 + s·72 + c
    expected = mlp(torch.cat((text, position), dim=1), "linears")

    result = encoder(samples, pooled)
    assert result.shape == (2, 16)
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


def test_forward_equals_the_official_masked_net_on_filled_slots():
    state = official_layout_net(seed=3)
    encoder = loaded_encoder(state)
    official = ref.LayoutNet(8, 16)
    official.load_state_dict({k.removeprefix("layout_net."): v for k, v in state.items()})
    boxes, masks = ref.dense_boxes([(10, 10, 50, 40), (0, 0, 64, 64)], 64, 64, max_objs=4)  # two empty slots
    pooled = torch.randn(1, 4, 8, generator=torch.Generator().manual_seed(4))
    result = encoder(boxes[:2], pooled[0, :2])
    assert torch.equal(result, official(boxes[None, :2], masks[None, :2], pooled[:, :2])[0])
    # with empty slots in the batch the GEMM shapes differ, which may change the last bit only
    torch.testing.assert_close(result, official(boxes[None], masks[None], pooled)[0, :2], rtol=1e-6, atol=1e-6)


def test_inputs_are_cast_to_the_weight_dtype():
    encoder = loaded_encoder(official_layout_net(), dtype=torch.bfloat16)
    samples = geometry.dense_samples(Layout(64, 64, "", (Instance((0, 0, 32, 48), "a"),)))
    pooled = torch.randn(1, 8, generator=torch.Generator().manual_seed(2))
    result = encoder(samples, pooled)
    assert result.dtype == torch.bfloat16
    assert torch.equal(result, encoder(samples.bfloat16(), pooled.bfloat16()))
