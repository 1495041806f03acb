"""The family descriptions against an independent oracle: ``tests/data/official_keys_<family>.json``, written by
``tests/support/make_official_keys.py`` from diffusers' own transformer classes at the released sizes and from the
reference semantics, without reading the descriptions."""
import json
from pathlib import Path

import pytest

from instanceassemble_core.encoder import LayoutEncoder
from instanceassemble_core.families import FAMILIES, resolve

DATA = Path(__file__).resolve().parents[1] / "data"


def _manifest(name: str) -> dict:
    return json.loads((DATA / f"official_keys_{name}.json").read_text())


def _split(path: str) -> tuple[str, str]:
    parts = path.split(".")
    if parts[0] in ("transformer_blocks", "single_transformer_blocks"):
        return ".".join(parts[:2]), ".".join(parts[2:])
    return "", path


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_linear_of_the_transformer_has_its_shape_in_the_description(name):
    family, manifest = FAMILIES[name], _manifest(name)
    d, p = manifest["hidden_dim"], manifest["pooled_dim"]
    assert (family.hidden_dim, family.pooled_dim) == (d, p)
    last_joint = max(int(b.split(".")[1]) for b in manifest["layout_blocks"] if b.startswith("transformer_blocks."))
    mismatches = []
    for path, shape in manifest["linear_modules"].items():
        block, module = _split(path)
        modules = family.top_level_modules if not block else family.block_layout(block, last_joint).modules
        widths = [resolve(width, d, p) for width in modules.get(module, (0, 0))]
        if any(want is not None and want != got for got, want in zip(shape, widths)):
            mismatches.append((path, shape, widths))
    assert mismatches == []
    # nothing described that the transformer lacks: every block kind's module set is exactly diffusers'
    for block in manifest["layout_blocks"]:
        layout = family.block_layout(block, last_joint)
        assert {f"{block}.{m}" for m in layout.modules} == {p for p in manifest["linear_modules"]
                                                            if p.startswith(f"{block}.")}
    assert set(family.top_level_modules) == {p for p in manifest["linear_modules"] if not _split(p)[0]}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_layout_blocks_active_modules_and_host_slots_match_the_reference(name):
    family, manifest = FAMILIES[name], _manifest(name)
    d = family.hidden_dim
    blocks = family.layout_blocks(family.num_joint_blocks, family.num_single_blocks)
    assert list(blocks) == manifest["layout_blocks"]
    last_joint = family.num_joint_blocks - 1
    active, slots, swapped = {}, {}, []
    for block in blocks:
        layout = family.block_layout(block, last_joint)
        for module, slot in layout.active.items():
            active[f"{block}.{module}"] = [resolve(width, d, family.pooled_dim) for width in layout.modules[module]]
            slots[f"{block}.{module}"] = [slot.layer, slot.row * d]
        swapped += [f"{block}.{module}" for module in sorted(layout.scale_shift_rows)]
    assert active == manifest["active_lora_modules"]
    assert slots == manifest["host_slots"]
    assert swapped == manifest["scale_shift_rows"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_lora_scale_rule_and_instance_text_recipe(name):
    family, manifest = FAMILIES[name], _manifest(name)
    assert family.lora_alphas == (manifest["lora_scale"] == "alpha/r")
    assert [[part.encoder, part.projected] for part in family.pooled_text] == manifest["pooled_text"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_layout_file_keys_and_shapes(name):
    family, manifest = FAMILIES[name], _manifest(name)
    encoder = LayoutEncoder(family.pooled_dim, family.hidden_dim, device="meta")
    keys = {f"layout_net.{key}": list(value.shape) for key, value in encoder.state_dict().items()}
    for block in family.layout_blocks(family.num_joint_blocks, family.num_single_blocks):
        keys[f"{block}.layout_forward.weight"] = [family.hidden_dim, family.hidden_dim]
        keys[f"{block}.layout_forward.bias"] = [family.hidden_dim]
    assert keys == manifest["layout_keys"]
