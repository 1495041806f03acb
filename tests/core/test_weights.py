"""Official weight files → InstanceAssembleWeights: formats, family detection, LoRA scaling, and every refusal."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from instanceassemble_core.weights import (
    WeightsError, load_weights, read_official_pair, save_combined,
)
from tools.official_weights import (
    JOINT_ACTIVE_MODULES, SD3_LAST_BLOCK_ACTIVE_MODULES, SINGLE_ACTIVE_MODULES,
    inactive_lora_modules, make_official_weights, write_official_folder,
)

ROOT = Path(__file__).resolve().parents[2]
FLUX = dict(family="flux", hidden_dim=64, pooled_dim=64, num_double_blocks=7, num_single_blocks=2)
SD3 = dict(family="sd3", hidden_dim=128, pooled_dim=128, num_double_blocks=3)
RANK = 4


def _write(tmp_path, lora_sd, layout_sd, name="official") -> Path:
    return write_official_folder(tmp_path / name, lora_sd, layout_sd)


def _load_error(tmp_path, lora_sd, layout_sd) -> str:
    with pytest.raises(WeightsError) as caught:
        load_weights(_write(tmp_path, lora_sd, layout_sd))
    return str(caught.value)


def _expected_active(config) -> set[str]:
    d = config["num_double_blocks"]
    if config["family"] == "flux":
        joint = {f"transformer_blocks.{i}.{m}" for i in range(0, d, 3) for m in JOINT_ACTIVE_MODULES}
        return joint | {f"single_transformer_blocks.0.{m}" for m in SINGLE_ACTIVE_MODULES}
    joint = {f"transformer_blocks.{i}.{m}" for i in range(d - 1) for m in JOINT_ACTIVE_MODULES}
    return joint | {f"transformer_blocks.{d - 1}.{m}" for m in SD3_LAST_BLOCK_ACTIVE_MODULES}


def _assert_same_weights(a, b):
    assert (a.family, a.hidden_dim, a.pooled_dim) == (b.family, b.hidden_dim, b.pooled_dim)
    assert a.layout_net.keys() == b.layout_net.keys()
    for name in a.layout_net:
        assert torch.equal(a.layout_net[name], b.layout_net[name]), name
    assert a.layout_forward.keys() == b.layout_forward.keys()
    for block, (weight, bias) in a.layout_forward.items():
        assert torch.equal(weight, b.layout_forward[block][0]) and torch.equal(bias, b.layout_forward[block][1])
    assert a.lora.keys() == b.lora.keys()
    for path, delta in a.lora.items():
        other = b.lora[path]
        assert torch.equal(delta.down, other.down) and torch.equal(delta.up, other.up), path
        assert delta.scale == other.scale
        assert (delta.up_bias is None) == (other.up_bias is None)
        assert delta.up_bias is None or torch.equal(delta.up_bias, other.up_bias)
    assert a.ignored_lora_modules == b.ignored_lora_modules


@pytest.mark.parametrize("config", [FLUX, SD3], ids=["flux", "sd3"])
def test_folder_holds_the_official_tensors_under_diffusers_paths(tmp_path, config):
    lora_sd, layout_sd = make_official_weights(**config, rank=RANK)
    weights = load_weights(_write(tmp_path, lora_sd, layout_sd))

    assert weights.source == str(tmp_path / "official")
    assert set(weights.lora) == _expected_active(config)
    for path, delta in weights.lora.items():
        assert torch.equal(delta.down, lora_sd[f"transformer.{path}.lora_A.weight"])
        assert torch.equal(delta.up, lora_sd[f"transformer.{path}.lora_B.weight"])
        assert delta.up_bias is None
    for name, value in weights.layout_net.items():
        assert torch.equal(value, layout_sd[f"layout_net.{name}"])
    assert len(weights.layout_net) == 8
    for block, (weight, bias) in weights.layout_forward.items():
        assert torch.equal(weight, layout_sd[f"{block}.layout_forward.weight"])
        assert torch.equal(bias, layout_sd[f"{block}.layout_forward.bias"])


@pytest.mark.parametrize("config", [FLUX, SD3], ids=["flux", "sd3"])
def test_combined_file_loads_the_same_as_the_folder(tmp_path, config):
    lora_sd, layout_sd = make_official_weights(**config, rank=RANK)
    from_folder = load_weights(_write(tmp_path, lora_sd, layout_sd))
    combined = tmp_path / "combined.safetensors"
    save_combined(lora_sd, layout_sd, combined)

    from_file = load_weights(combined)
    _assert_same_weights(from_folder, from_file)
    assert from_file.source == str(combined)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["combined.safetensors"]


def test_read_official_pair_returns_the_raw_dicts(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    read_lora, read_layout = read_official_pair(_write(tmp_path, lora_sd, layout_sd))
    assert read_lora.keys() == lora_sd.keys() and read_layout.keys() == layout_sd.keys()
    assert all(torch.equal(read_lora[k], lora_sd[k]) for k in lora_sd)
    assert all(torch.equal(read_layout[k], layout_sd[k]) for k in layout_sd)


def test_convert_cli_round_trip(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    folder = _write(tmp_path, lora_sd, layout_sd)
    output = tmp_path / "out.safetensors"
    result = subprocess.run([sys.executable, "-m", "instanceassemble_core.convert", str(folder), str(output)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "family: flux" in result.stdout
    assert "hidden dim D: 64, pooled dim P: 64" in result.stdout
    assert f"active LoRA modules: {len(_expected_active(FLUX))} (ignored, never active: 4)" in result.stdout
    assert "transformer_blocks [0, 3, 6], single_transformer_blocks [0]" in result.stdout
    _assert_same_weights(load_weights(folder), load_weights(output))


def test_convert_cli_help_and_failure(tmp_path):
    help_run = subprocess.run([sys.executable, "-m", "instanceassemble_core.convert", "--help"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0 and "layout.pth" in help_run.stdout

    (tmp_path / "empty").mkdir()
    output = tmp_path / "out.safetensors"
    failed = subprocess.run([sys.executable, "-m", "instanceassemble_core.convert", str(tmp_path / "empty"),
                             str(output)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "pytorch_lora_weights.safetensors" in failed.stderr and "Traceback" not in failed.stderr
    assert not output.exists()


@pytest.mark.parametrize("config, double, single", [
    (FLUX, (0, 3, 6), (0,)),
    (dict(FLUX, num_double_blocks=1, num_single_blocks=1), (0,), (0,)),
    (SD3, (0, 1, 2), ()),
    (dict(SD3, num_double_blocks=1), (0,), ()),
], ids=["flux", "flux-one-block", "sd3", "sd3-one-block"])
def test_family_width_and_layout_blocks_come_from_the_keys(tmp_path, config, double, single):
    weights = load_weights(_write(tmp_path, *make_official_weights(**config)))
    assert weights.family == config["family"]
    assert (weights.hidden_dim, weights.pooled_dim) == (config["hidden_dim"], config["pooled_dim"])
    assert weights.double_layout_blocks == double
    assert weights.single_layout_blocks == single


def test_sd3_pooled_width_may_differ_from_hidden_width(tmp_path):
    weights = load_weights(_write(tmp_path, *make_official_weights(**dict(SD3, pooled_dim=96))))
    assert (weights.hidden_dim, weights.pooled_dim) == (128, 96)


def test_sd3_last_block_is_context_pre_only(tmp_path):
    weights = load_weights(_write(tmp_path, *make_official_weights(**SD3, rank=RANK)))
    last = "transformer_blocks.2"
    assert weights.lora[f"{last}.norm1_context.linear"].up.shape == (2 * 128, RANK)
    assert f"{last}.attn.to_add_out" not in weights.lora and f"{last}.ff_context.net.2" not in weights.lora
    assert weights.lora["transformer_blocks.1.norm1_context.linear"].up.shape == (6 * 128, RANK)


def test_flux_scale_is_alpha_over_rank(tmp_path):
    weights = load_weights(_write(tmp_path, *make_official_weights(**FLUX, rank=RANK, with_alpha=True)))
    assert {delta.scale for delta in weights.lora.values()} == {2.0}


@pytest.mark.parametrize("config", [FLUX, SD3], ids=["flux", "sd3"])
def test_scale_is_one_without_alpha_keys(tmp_path, config):
    weights = load_weights(_write(tmp_path, *make_official_weights(**config, with_alpha=False)))
    assert {delta.scale for delta in weights.lora.values()} == {1.0}


def test_sd3_ignores_alpha_keys_like_the_official_loader(tmp_path):
    weights = load_weights(_write(tmp_path, *make_official_weights(**SD3, rank=RANK, with_alpha=True)))
    assert {delta.scale for delta in weights.lora.values()} == {1.0}


def test_flux_module_without_alpha_uses_the_most_common_alpha_over_its_own_rank(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX, rank=RANK)
    own = "transformer.transformer_blocks.0.attn.to_k"
    lora_sd[f"{own}.alpha"] = torch.tensor(3.0)
    missing = "transformer.transformer_blocks.3.attn.to_v"
    del lora_sd[f"{missing}.alpha"]
    lora_sd[f"{missing}.lora_A.weight"] = torch.randn(2, 64)  # rank 2 on this module only
    lora_sd[f"{missing}.lora_B.weight"] = torch.randn(64, 2)

    weights = load_weights(_write(tmp_path, lora_sd, layout_sd))
    assert weights.lora["transformer_blocks.0.attn.to_k"].scale == 3.0 / RANK
    assert weights.lora["transformer_blocks.3.attn.to_v"].scale == 2.0 * RANK / 2
    assert weights.lora["transformer_blocks.0.attn.to_q"].scale == 2.0


def test_lora_b_bias_is_kept(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    bias = torch.randn(6 * 64)
    lora_sd["transformer.transformer_blocks.3.norm1.linear.lora_B.bias"] = bias
    weights = load_weights(_write(tmp_path, lora_sd, layout_sd))
    assert torch.equal(weights.lora["transformer_blocks.3.norm1.linear"].up_bias, bias)
    assert weights.lora["transformer_blocks.0.norm1.linear"].up_bias is None


@pytest.mark.parametrize("config", [FLUX, SD3], ids=["flux", "sd3"])
def test_inactive_lora_modules_are_recognised_but_ignored(tmp_path, config):
    weights = load_weights(_write(tmp_path, *make_official_weights(**config, extra_inactive=True)))
    expected = set(inactive_lora_modules(config["family"], config["num_double_blocks"],
                                         config.get("num_single_blocks", 0)))
    assert set(weights.ignored_lora_modules) == expected
    assert not expected & set(weights.lora)
    assert set(weights.lora) == _expected_active(config)


def test_unknown_keys_are_listed(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    lora_sd["transformer.transformer_blocks.0.attn.to_q.lora_C.weight"] = torch.zeros(4, 64)
    lora_sd["unet.down_blocks.0.lora_A.weight"] = torch.zeros(4, 64)
    lora_sd["transformer.transformer_blocks.0.attn.to_qkv.lora_A.weight"] = torch.zeros(4, 64)
    lora_sd["transformer.transformer_blocks.0.attn.to_qkv.lora_B.weight"] = torch.zeros(192, 4)
    layout_sd["layout_net.position_net.weight"] = torch.zeros(3)
    layout_sd["transformer_blocks.0.layout_forward.scale"] = torch.zeros(3)

    message = _load_error(tmp_path, lora_sd, layout_sd)
    for key in ("transformer.transformer_blocks.0.attn.to_q.lora_C.weight", "unet.down_blocks.0.lora_A.weight",
                "transformer.transformer_blocks.0.attn.to_qkv.lora_A.weight",
                "transformer.transformer_blocks.0.attn.to_qkv.lora_B.weight",
                "layout_net.position_net.weight", "transformer_blocks.0.layout_forward.scale"):
        assert key in message
    assert "official InstanceAssemble release" in message and "instanceassemble_core.convert" in message


def test_sd3_lora_on_modules_missing_from_the_last_block_is_refused(tmp_path):
    lora_sd, layout_sd = make_official_weights(**SD3)
    lora_sd["transformer.transformer_blocks.2.attn.to_add_out.lora_A.weight"] = torch.zeros(4, 128)
    lora_sd["transformer.transformer_blocks.2.attn.to_add_out.lora_B.weight"] = torch.zeros(128, 4)
    lora_sd["transformer.single_transformer_blocks.0.proj_mlp.lora_A.weight"] = torch.zeros(4, 128)
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert "transformer.transformer_blocks.2.attn.to_add_out.lora_A.weight" in message
    assert "transformer.single_transformer_blocks.0.proj_mlp.lora_A.weight" in message
    assert "sd3 transformer does not have" in message


def test_missing_layout_keys_are_listed(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    del layout_sd["layout_net.linears.linear_2.bias"]
    del layout_sd["transformer_blocks.3.layout_forward.weight"]
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert "missing layout_net keys (1): layout_net.linears.linear_2.bias" in message
    assert "missing layout_forward keys (1): transformer_blocks.3.layout_forward.weight" in message


def test_missing_width_defining_key_is_reported(tmp_path):
    lora_sd, layout_sd = make_official_weights(**SD3)
    del layout_sd["layout_net.text_embedder.linear_1.weight"]
    assert "layout_net.text_embedder.linear_1.weight" in _load_error(tmp_path, lora_sd, layout_sd)


def test_layout_forward_on_a_block_without_layout_branch_is_refused(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    layout_sd["transformer_blocks.1.layout_forward.weight"] = torch.zeros(64, 64)
    layout_sd["transformer_blocks.10.layout_forward.weight"] = torch.zeros(64, 64)
    layout_sd["single_transformer_blocks.1.layout_forward.bias"] = torch.zeros(64)
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert ("layout_forward on blocks that have no layout branch (3): single_transformer_blocks.1.layout_forward.bias, "
            "transformer_blocks.1.layout_forward.weight, transformer_blocks.10.layout_forward.weight") in message
    assert "missing" not in message


def test_sd3_layout_blocks_must_be_contiguous(tmp_path):
    lora_sd, layout_sd = make_official_weights(**SD3)
    del layout_sd["transformer_blocks.1.layout_forward.weight"]
    del layout_sd["transformer_blocks.1.layout_forward.bias"]
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert "transformer_blocks.1.layout_forward.weight" in message
    assert "transformer_blocks.1.layout_forward.bias" in message


def test_lora_a_without_b_is_listed(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    del lora_sd["transformer.transformer_blocks.3.attn.to_q.lora_B.weight"]
    lora_sd["transformer.transformer_blocks.6.ff.net.2.lora_B.bias"] = torch.zeros(64)
    del lora_sd["transformer.transformer_blocks.6.ff.net.2.lora_A.weight"]
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert "without both lora_A.weight and lora_B.weight" in message
    for key in ("transformer.transformer_blocks.3.attn.to_q.lora_A.weight",
                "transformer.transformer_blocks.3.attn.to_q.alpha",
                "transformer.transformer_blocks.6.ff.net.2.lora_B.weight",
                "transformer.transformer_blocks.6.ff.net.2.lora_B.bias"):
        assert key in message


def test_wrong_shapes_are_listed_with_what_was_expected(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX, rank=RANK)
    layout_sd["transformer_blocks.3.layout_forward.weight"] = torch.zeros(64, 65)
    layout_sd["layout_net.linears.linear_1.weight"] = torch.zeros(32, 64 + 1000)
    lora_sd["transformer.transformer_blocks.0.ff.net.2.lora_A.weight"] = torch.zeros(RANK, 64)  # in must be 4D
    lora_sd["transformer.single_transformer_blocks.0.proj_out.lora_B.weight"] = torch.zeros(64, RANK + 1)
    lora_sd["transformer.transformer_blocks.0.norm1.linear.lora_B.bias"] = torch.zeros(64)
    lora_sd["transformer.transformer_blocks.0.attn.to_q.alpha"] = torch.zeros(2)
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert "wrong shapes" in message
    for line in ("transformer_blocks.3.layout_forward.weight: got [64, 65], expected [64, 64]",
                 "layout_net.linears.linear_1.weight: got [32, 1064], expected [32, 1216]",
                 "transformer.transformer_blocks.0.ff.net.2.lora_A.weight: got [4, 64], expected [r, 256]",
                 "transformer.single_transformer_blocks.0.proj_out.lora_B.weight: got [64, 5], expected [64, r]",
                 "transformer.transformer_blocks.0.norm1.linear.lora_B.bias: got [64], expected [384]",
                 "transformer.transformer_blocks.0.attn.to_q.alpha: got [2], expected a scalar"):
        assert line in message


def test_non_floating_tensors_are_refused(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    lora_sd["transformer.transformer_blocks.0.attn.to_q.alpha"] = torch.tensor(8)
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert "not floating point (1): transformer.transformer_blocks.0.attn.to_q.alpha" in message


def test_long_key_lists_are_cut_with_a_count(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    for i in range(25):
        layout_sd[f"extra.{i}"] = torch.zeros(1)
    message = _load_error(tmp_path, lora_sd, layout_sd)
    assert "unrecognised layout keys (25): extra.0, extra.1," in message
    assert "extra.19, ... and 5 more" in message and "extra.20" not in message


def test_missing_files_are_named(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    folder = _write(tmp_path, lora_sd, layout_sd)
    (folder / "layout.pth").unlink()
    with pytest.raises(WeightsError, match=r"Missing .*layout\.pth.*download"):
        load_weights(folder)
    with pytest.raises(WeightsError, match=r"nowhere.*does not exist"):
        load_weights(tmp_path / "nowhere")
    with pytest.raises(WeightsError, match=r"Pass the folder"):
        load_weights(_write(tmp_path, lora_sd, layout_sd, "again") / "layout.pth")


def test_official_lora_file_alone_is_not_a_combined_file(tmp_path):
    folder = _write(tmp_path, *make_official_weights(**FLUX))
    with pytest.raises(WeightsError, match=r"not a combined InstanceAssemble file.*pass the folder"):
        load_weights(folder / "pytorch_lora_weights.safetensors")


def test_combined_file_with_wrong_family_metadata_is_refused(tmp_path):
    lora_sd, layout_sd = make_official_weights(**SD3)
    path = tmp_path / "edited.safetensors"
    save_file({**lora_sd, **layout_sd}, str(path),
              metadata={"format": "instanceassemble.weights", "version": "1", "family": "flux"})
    with pytest.raises(WeightsError, match=r"family 'flux'.*'sd3'"):
        load_weights(path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_lora_safetensors_is_named_with_the_fix(tmp_path):
    folder = _write(tmp_path, *make_official_weights(**FLUX))
    _truncate(folder / "pytorch_lora_weights.safetensors")
    with pytest.raises(WeightsError, match=r"pytorch_lora_weights\.safetensors.*truncated or corrupt.*re-download"):
        load_weights(folder)


def test_truncated_combined_file_is_named(tmp_path):
    path = tmp_path / "combined.safetensors"
    save_combined(*make_official_weights(**SD3), path)
    _truncate(path)
    with pytest.raises(WeightsError, match=r"combined\.safetensors.*truncated or corrupt"):
        load_weights(path)


def test_truncated_layout_pth_is_named_with_the_fix(tmp_path):
    folder = _write(tmp_path, *make_official_weights(**FLUX))
    _truncate(folder / "layout.pth")
    with pytest.raises(WeightsError, match=r"layout\.pth.*truncated.*Re-download layout\.pth"):
        load_weights(folder)


class _CreatesFileWhenUnpickled:
    """Unpickling this object calls ``open(marker, 'w')``: a stand-in for arbitrary code in a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_layout_pth_with_python_objects_is_refused_without_running_them(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    marker = tmp_path / "payload_ran"
    layout_sd["layout_net.text_embedder.linear_1.weight"] = _CreatesFileWhenUnpickled(marker)
    folder = _write(tmp_path, lora_sd, layout_sd)

    with pytest.raises(WeightsError, match=r"Refused to load .*layout\.pth.*not a tensor.*official"):
        load_weights(folder)
    assert not marker.exists()
    torch.load(folder / "layout.pth", weights_only=False)  # the payload is live: an unsafe load would run it
    assert marker.exists()


def test_wrapped_layout_state_dict_is_refused(tmp_path):
    lora_sd, layout_sd = make_official_weights(**FLUX)
    folder = write_official_folder(tmp_path / "wrapped", lora_sd, {})
    torch.save({"state_dict": layout_sd, "epoch": 3}, folder / "layout.pth")
    with pytest.raises(WeightsError, match=r"flat dict of name -> tensor.*not tensors: epoch, state_dict"):
        load_weights(folder)
