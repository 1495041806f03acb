"""Bad input through the real nodes: every error names the node, the field and the fix."""
import json

import pytest
import torch

import folder_paths
from tools import official_weights, tiny_models
from tools.pack_nodes import LAYOUT_256x128, apply, encode
from tools.sampling import flux_conditioning, sample


def from_json(pack, text, **kw):
    return pack.nodes.layout_nodes.InstanceAssembleLayoutFromJSON().parse(text, **kw)


def with_box(bbox, **extra):
    layout = json.loads(json.dumps(LAYOUT_256x128))
    layout["annos"][1]["bbox"] = bbox
    layout.update(extra)
    return json.dumps(layout)


@pytest.mark.parametrize("text, field, fix_words", [
    ('{"prompt": "x", "width": 256,', "json", "line 1"),
    (with_box([300, 0, 320, 20]), "annos[1].bbox", "outside"),
    (with_box([100, 0, 50, 20]), "annos[1].bbox", "swap"),
    (with_box([50, 20, 50, 60 + 10 ** 400]), "annos[1].bbox", "number"),
    ('{"hello": 1}', "json", "annos"),
])
def test_layout_json_errors_name_node_field_and_fix(pack, text, field, fix_words):
    with pytest.raises(ValueError) as error:
        from_json(pack, text)
    message = str(error.value)
    assert message.startswith("InstanceAssembleLayoutFromJSON: json")
    assert field in message
    assert fix_words.lower() in message.lower()
    assert "Fix:" in message or field == "json"


def test_more_boxes_than_the_documented_maximum(pack):
    limit = pack.instanceassemble_core.layout.MAX_INSTANCES
    assert limit >= 100
    annos = [{"bbox": [i % 200, 0, i % 200 + 8, 8], "category_name": f"box {i}", "caption": ""}
             for i in range(limit + 1)]
    with pytest.raises(ValueError, match=str(limit)) as error:
        from_json(pack, json.dumps({"prompt": "", "width": 256, "height": 128, "annos": annos}))
    assert "InstanceAssembleLayoutFromJSON" in str(error.value)
    layout = from_json(pack, json.dumps({"prompt": "", "width": 256, "height": 128, "annos": annos[:limit]}))[0]
    assert len(layout.instances) == limit


def test_sd3_weights_on_a_flux_model(pack, flux_model, sd3_weights, flux_clip, layout):
    with pytest.raises(ValueError) as error:
        apply(pack, flux_model, sd3_weights, encode(pack, flux_clip, layout))
    message = str(error.value)
    assert message.startswith("InstanceAssembleApply: instanceassemble:")
    assert "SD3-medium InstanceAssemble weights" in message and "model is Flux.1" in message
    assert "InstanceAssembleLoader" in message


def test_flux_weights_on_an_sd3_model(pack, sd3_model, flux_weights, sd3_clip, layout):
    with pytest.raises(ValueError) as error:
        apply(pack, sd3_model, flux_weights, encode(pack, sd3_clip, layout))
    message = str(error.value)
    assert message.startswith("InstanceAssembleApply: instanceassemble:")
    assert "Flux.1 InstanceAssemble weights" in message and "model is SD3-medium" in message
    assert not sd3_model.model_options.get("transformer_options") and not sd3_model.additional_models


def test_layout_encoded_with_the_wrong_clip(pack, flux_model, flux_weights, sd3_clip, layout):
    with pytest.raises(ValueError, match="InstanceAssembleApply: layout: .*SD3-medium CLIP.*Flux.1"):
        apply(pack, flux_model, flux_weights, encode(pack, sd3_clip, layout))


def test_unsupported_model_family(pack, flux_weights, flux_clip, layout):
    sd3_5 = tiny_models.tiny_sd3_patcher(depth=2, qk_norm=True)
    with pytest.raises(ValueError, match="InstanceAssembleApply: model: .*SD3.5.*SD3-medium"):
        apply(pack, sd3_5, flux_weights, encode(pack, flux_clip, layout))


def test_image_size_not_a_multiple_of_16(pack, flux_model, flux_weights, flux_clip, layout):
    patched = apply(pack, flux_model, flux_weights, encode(pack, flux_clip, layout))
    positive = flux_conditioning(flux_clip, "x")
    with pytest.raises(ValueError) as error:
        sample(patched, positive, positive, torch.zeros(1, 16, 15, 32))
    message = str(error.value)
    assert "InstanceAssembleApply" in message and "256×120 px" in message and "multiples of 16" in message


@pytest.fixture
def weights_dir(tmp_path):
    folder_paths.add_model_folder_path("instanceassemble", str(tmp_path))
    yield tmp_path
    folder_paths.folder_names_and_paths["instanceassemble"][0].remove(str(tmp_path))


def test_loader_lists_and_loads_official_folders_and_combined_files(pack, weights_dir, flux_weights_folder):
    lora_sd, layout_sd = official_weights.make_official_weights("flux", 64, 64, 4, 2)
    official_weights.write_official_folder(weights_dir / "flux-official", lora_sd, layout_sd)
    pack.instanceassemble_core.weights.save_combined(lora_sd, layout_sd, weights_dir / "flux-combined.safetensors")
    loader = pack.nodes.loader
    names = loader.InstanceAssembleLoader.INPUT_TYPES()["required"]["weights"][0]
    assert {"flux-official", "flux-combined.safetensors"} <= set(names)
    from_folder = loader.InstanceAssembleLoader().load("flux-official")[0]
    from_file = loader.InstanceAssembleLoader().load("flux-combined.safetensors")[0]
    assert from_folder.family == from_file.family == "flux"
    assert from_folder.lora.keys() == from_file.lora.keys()


def test_loader_errors_for_missing_and_truncated_files(pack, weights_dir):
    lora_sd, layout_sd = official_weights.make_official_weights("flux", 64, 64, 4, 2)
    folder = official_weights.write_official_folder(weights_dir / "broken", lora_sd, layout_sd)
    data = (folder / "layout.pth").read_bytes()
    (folder / "layout.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="InstanceAssembleLoader: weights: .*layout.pth"):
        pack.nodes.loader.InstanceAssembleLoader().load("broken")
    with pytest.raises(FileNotFoundError, match="InstanceAssembleLoader: weights: 'gone' was not found"):
        pack.nodes.loader.InstanceAssembleLoader().load("gone")
