"""The example workflows: consistent graphs of existing nodes with the documented settings, and each one runs end to
end on tiny models through ComfyUI's own validation and executor (the headless runner's ``execute``). Also the help
pages the frontend shows for the pack's nodes (``web/docs/<node>.md``, fetched from /extensions/<pack>/docs/)."""
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import folder_paths
import nodes as comfy_nodes
from core_boxes import CREATE_BOUNDING_BOXES, HAS_CORE_BOXES, without_core_box_nodes
from tools import run
from tools.comfyui_path import PACK_ROOT
from tools.tiny_models import install_tiny_models, tiny_prompt

EXAMPLES = sorted(run.EXAMPLES.glob("*.json"))
# example → (sampler steps, cfg, FluxGuidance or None)
SETTINGS = {
    "flux1_dev": (28, 1.0, 3.5),
    "flux1_schnell": (4, 1.0, None),
    "sd3_medium": (50, 7.0, None),
    "flux1_dev_style_lora": (28, 1.0, 3.5),
    "flux1_dev_dense_layout_editor": (28, 1.0, 3.5),
    "flux1_schnell_same_layout_new_picture": (4, 1.0, None),
}
# Core nodes of ComfyUI 0.29 that examples use; on 0.3.64 their data is given as plain values (core_boxes.py).
CORE_029_NODES = {CREATE_BOUNDING_BOXES}


@pytest.fixture(scope="module")
def node_classes(pack, tmp_path_factory):
    """ComfyUI's built-in nodes, this pack's nodes, and the tiny models with their stand-in loaders; one torch thread
    while the tiny graphs run, as in the runner's --tiny mode."""
    run.load_nodes()
    install_tiny_models(tmp_path_factory.mktemp("tiny_models"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield comfy_nodes.NODE_CLASS_MAPPINGS
    torch.set_num_threads(threads)


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def nodes_of(workflow, class_type):
    return [node for node in workflow["nodes"] if node["type"] == class_type]


def test_examples_cover_every_model_a_style_lora_and_a_dense_editor_layout():
    assert {path.stem for path in EXAMPLES} == set(SETTINGS)
    assert set(run.MODEL_WORKFLOWS.values()) <= {path.name for path in EXAMPLES}
    assert nodes_of(load(run.EXAMPLES / "flux1_dev_style_lora.json"), "LoraLoaderModelOnly")
    editor = nodes_of(load(run.EXAMPLES / "flux1_dev_dense_layout_editor.json"), "InstanceAssembleLayoutEditor")
    width, height, layout = editor[0]["widgets_values"]
    canonical = json.loads(layout)
    assert canonical["format"] == "instanceassemble.layout" and canonical["version"] == 1
    assert (canonical["width"], canonical["height"]) == (width, height)
    assert len(canonical["boxes"]) >= 20


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_is_a_consistent_graph_of_known_nodes(node_classes, path):
    workflow = load(path)
    by_id = {node["id"]: node for node in workflow["nodes"]}
    assert len(by_id) == len(workflow["nodes"]) and workflow["last_node_id"] >= max(by_id)
    assert workflow["last_link_id"] >= max(link[0] for link in workflow["links"])
    for node in workflow["nodes"]:
        assert node["type"] in node_classes or (node["type"] in CORE_029_NODES and not HAS_CORE_BOXES), node["type"]
    for link_id, origin, origin_slot, target, target_slot, kind in workflow["links"]:
        output = by_id[origin]["outputs"][origin_slot]
        target_input = by_id[target]["inputs"][target_slot]
        assert link_id in output["links"] and output["type"] == kind
        assert target_input["link"] == link_id and target_input["type"] == kind
        if by_id[target]["type"] not in node_classes:
            continue
        spec = {**(types := node_classes[by_id[target]["type"]].INPUT_TYPES()).get("required", {}),
                **types.get("optional", {})}[target_input["name"]]
        assert spec[0] == kind, (path.stem, target_input["name"], spec[0], kind)
    linked = {link[0] for link in workflow["links"]}
    for node in workflow["nodes"]:
        assert {i["link"] for i in node["inputs"] if i["link"] is not None} <= linked
        assert {link for o in node["outputs"] for link in o["links"]} <= linked
    with Image.open(path.with_suffix(".jpg")) as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.width >= 256


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_has_the_documented_settings(node_classes, path):
    prompt = _load_for_this_comfyui(path)
    steps, cfg, guidance = SETTINGS[path.stem]
    by_class = {node["class_type"]: node["inputs"] for node in prompt.values()}
    assert (by_class["KSampler"]["steps"], by_class["KSampler"]["cfg"]) == (steps, cfg)
    assert by_class.get("FluxGuidance", {}).get("guidance") == guidance
    assert (by_class["InstanceAssembleApply"]["layout_scale"], by_class["InstanceAssembleApply"]["grounding_ratio"]) \
        == (1.0, 0.3)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_on_tiny_models(node_classes, path, tmp_path):
    # LoadImage reads the session's input folder, where loading the pack copied the examples' input images
    prompt = tiny_prompt(_load_for_this_comfyui(path))
    written = run.execute(prompt, tmp_path, path.stem)

    assert [p.name for p in written["image"]] == [f"{path.stem}.png"]
    assert [p.name for p in written["layout"]] == [f"{path.stem}_layout.png"]
    image = np.asarray(Image.open(written["image"][0]).convert("RGB"))
    overlay = np.asarray(Image.open(written["layout"][0]).convert("RGB"))
    assert image.shape == overlay.shape and max(image.shape[:2]) == 256
    assert (image != overlay).any(axis=-1).mean() > 0.01  # the boxes are drawn


EXAMPLE_INPUTS = sorted(run.EXAMPLES.glob("inputs/*"))


@pytest.fixture
def input_folder(tmp_path):
    """ComfyUI's input folder set to ``tmp_path / "input"`` (not created) for the test."""
    saved = folder_paths.get_input_directory()
    folder_paths.set_input_directory(str(tmp_path / "input"))
    yield tmp_path / "input"
    folder_paths.set_input_directory(saved)


def test_the_images_examples_load_ship_in_example_inputs():
    loaded = {node["widgets_values"][0] for path in EXAMPLES for node in nodes_of(load(path), "LoadImage")}
    assert loaded and loaded <= {source.name for source in EXAMPLE_INPUTS}


def test_loading_the_pack_copied_the_example_inputs_into_comfyuis_input_folder(pack):
    input_dir = Path(folder_paths.get_input_directory())  # the session's (tests/conftest.py), set before the pack
    for source in EXAMPLE_INPUTS:
        assert (input_dir / source.name).read_bytes() == source.read_bytes(), source.name


def test_example_inputs_are_copied_into_an_empty_input_folder_for_loadimage(pack, input_folder):
    input_folder.mkdir()
    assert pack.nodes.example_inputs.copy_example_inputs() == [input_folder / source.name for source in EXAMPLE_INPUTS]
    for source in EXAMPLE_INPUTS:
        assert (input_folder / source.name).read_bytes() == source.read_bytes()
    assert {s.name for s in EXAMPLE_INPUTS} <= set(comfy_nodes.LoadImage.INPUT_TYPES()["required"]["image"][0])
    assert pack.nodes.example_inputs.copy_example_inputs() == []


def test_a_file_of_the_same_name_in_the_input_folder_is_kept(pack, input_folder):
    input_folder.mkdir()
    mine = input_folder / EXAMPLE_INPUTS[0].name
    mine.write_bytes(b"the user's own picture")
    written = pack.nodes.example_inputs.copy_example_inputs()
    assert mine.read_bytes() == b"the user's own picture"
    assert written == [input_folder / source.name for source in EXAMPLE_INPUTS[1:]]


# /sys (sysfs) takes no new files, even from root (tests may run as root, for whom a chmod-ed folder is writable)
@pytest.mark.parametrize("folder", ["missing", "/sys"])
def test_an_input_folder_that_cannot_be_written_logs_one_warning(pack, input_folder, folder, caplog):
    target = input_folder if folder == "missing" else Path(folder)
    folder_paths.set_input_directory(str(target))
    with caplog.at_level(logging.WARNING):
        assert pack.nodes.example_inputs.copy_example_inputs() == []
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    message = caplog.records[0].getMessage()
    assert str(target) in message and f"copy the files of {run.EXAMPLES / 'inputs'} there" in message
    assert not input_folder.exists() and not (Path("/sys") / EXAMPLE_INPUTS[0].name).exists()


def _load_for_this_comfyui(path):
    if HAS_CORE_BOXES:
        return run.load_graph(path)
    workflow = load(path)
    core = {node["id"] for node in workflow["nodes"] if node["type"] in CORE_029_NODES}
    if not core:
        return run.load_graph(path)
    # 0.3.64: convert with the pack's and ComfyUI's nodes, the core box node's data as plain values
    import copy
    stand_in = copy.deepcopy(workflow)
    for node in stand_in["nodes"]:
        if node["id"] in core:
            node["type"] = "_core_" + node["type"]
    comfy_nodes.NODE_CLASS_MAPPINGS["_core_" + CREATE_BOUNDING_BOXES] = _CreateBoundingBoxesInputs
    try:
        prompt = run.workflow_to_prompt(stand_in)
    finally:
        del comfy_nodes.NODE_CLASS_MAPPINGS["_core_" + CREATE_BOUNDING_BOXES]
    for node in prompt.values():
        node["class_type"] = node["class_type"].removeprefix("_core_")
    return without_core_box_nodes(prompt)


class _CreateBoundingBoxesInputs:
    """Create Bounding Boxes' inputs as ComfyUI 0.29 declares them, to read its saved widget values on 0.3.64."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {}), "height": ("INT", {}), "editor_state": ("BOUNDING_BOXES", {})},
                "optional": {"background": ("IMAGE", {}), "bboxes": ("BOUNDING_BOX,ARRAY,STRING", {}),
                             "last_incoming": ("BOUNDING_BOXES", {})}}


def test_every_pack_node_has_a_help_page_naming_its_inputs_and_outputs(pack):
    for name, cls in pack.NODE_CLASS_MAPPINGS.items():
        page = (PACK_ROOT / "web" / "docs" / f"{name}.md").read_text(encoding="utf-8")
        input_types = cls.INPUT_TYPES()
        names = [*input_types["required"], *input_types.get("optional", {}), *getattr(cls, "RETURN_NAMES", ())]
        for field in names + list(cls.RETURN_TYPES):
            assert f"| {field} |" in page, (name, field)
