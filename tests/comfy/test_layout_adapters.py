"""Layouts from boxes and masks and back, in ComfyUI: the nodes, mask regions through real samplers, graphs that
start at ComfyUI 0.29's core box nodes (plain data on 0.3.64, where those nodes and types do not exist), and
workflows saved with the box layout's old type name."""
import asyncio
import json
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

import comfyui_version
import nodes as comfy_nodes
from tools.pack_nodes import apply, encode, latent_for
from tools.sampling import flux_conditioning, sample, text_conditioning
from tools import run
from tools.comfyui_path import PACK_ROOT, find_comfyui
from tools.tiny_models import install_tiny_models, tiny_prompt

HAS_CORE_BOXES = tuple(int(p) for p in comfyui_version.__version__.split(".")[:2]) >= (0, 29)
# What Create Bounding Boxes gets in its editor_state (the canvas) in these tests, and what it outputs for it on
# ComfyUI 0.29 (checked against the real node below): bboxes as a batch list of frames, and the elements.
CANVAS = [{"x": 0, "y": 0, "width": 256, "height": 64, "metadata": {"type": "obj", "desc": "blue sky"}},
          {"x": 32, "y": 48, "width": 96, "height": 64, "metadata": {"type": "text", "text": "SALE", "desc": "red"}}]
CANVAS_BBOXES = [[{"x": 0, "y": 0, "width": 256, "height": 64}, {"x": 32, "y": 48, "width": 96, "height": 64}]]
CANVAS_ELEMENTS = [{"type": "obj", "bbox": [0, 0, 500, 1000], "desc": "blue sky"},
                   {"type": "text", "bbox": [375, 125, 875, 500], "text": "SALE", "desc": "red"}]


def from_boxes(pack, width=0, height=0, captions="", box_format="auto", **inputs):
    node = pack.nodes.layout_adapters.InstanceAssembleLayoutFromBoxes()
    return node.build("a poster", captions, box_format, 0, width, height, **inputs)


def from_masks(pack, masks, captions, threshold=0.5, layout=None, width=0, height=0, **inputs):
    node = pack.nodes.layout_adapters.InstanceAssembleLayoutFromMasks()
    return node.build(masks, captions, threshold, "", width, height, layout=layout, **inputs)


def test_layout_from_core_boxes_elements_and_detector_json(pack):
    image = torch.zeros(1, 128, 256, 3)
    layout, prompt, width, height = from_boxes(pack, bboxes=CANVAS_BBOXES, captions="the sky\na sign",
                                               image=image)
    assert (prompt, width, height, layout.width, layout.height) == ("a poster", 256, 128, 256, 128)
    assert [(i.bbox, i.text) for i in layout.instances] == [((0, 0, 256, 64), "the sky"),
                                                            ((32, 48, 128, 112), "a sign")]
    by_elements = from_boxes(pack, elements=CANVAS_ELEMENTS, image=image)[0]
    assert [(i.bbox, i.text) for i in by_elements.instances] == [((0, 0, 256, 64), "blue sky"),
                                                                 ((32, 48, 128, 112), 'text "SALE", red')]
    assert from_boxes(pack, 100, 50, boxes_json='[{"bbox": [0.5, 0, 1, 1], "label": "dog"}]',
                      )[0].instances[0].bbox == (50, 0, 100, 50)
    assert from_boxes(pack, 1010, 667, bboxes={"x": 0, "y": 0, "width": 10, "height": 10},
                      captions="a")[2:] == (1008, 656)  # the latent size: floored to 16, the official token grid


def test_textless_boxes_are_warned_and_a_size_is_needed(pack, caplog):
    layout = from_boxes(pack, bboxes=CANVAS_BBOXES, captions="the sky\n", image=torch.zeros(1, 128, 256, 3))[0]
    assert layout.instances[1].text == ""  # the official code encodes "" for a box without text
    assert "InstanceAssembleLayoutFromBoxes: boxes[1] has neither a category nor a caption" in caplog.text
    with pytest.raises(ValueError, match=r"InstanceAssembleLayoutFromBoxes: width/height: the image size is "
                                         r"unknown.*Fix: connect the image"):
        from_boxes(pack, bboxes=CANVAS_BBOXES)
    with pytest.raises(ValueError, match=r"InstanceAssembleLayoutFromBoxes: boxes_json: not valid JSON"):
        from_boxes(pack, 64, 64, boxes_json="[")


def test_every_source_together_in_order(pack):
    latent = {"samples": torch.zeros(1, 16, 16, 32)}
    detections = json.dumps({"bboxes": [[0.5, 0.5, 1.0, 1.0]], "labels": ["dog"]})
    layout, *_ = from_boxes(pack, bboxes=CANVAS, elements=CANVAS_ELEMENTS, boxes_json=detections, latent=latent)
    assert [i.text for i in layout.instances] == ["blue sky", 'text "SALE", red'] * 2 + ["dog"]
    assert layout.instances[4].bbox == (128, 64, 256, 128)
    assert [i.bbox for i in layout.instances[:2]] == [i.bbox for i in layout.instances[2:4]]


def test_core_node_outputs_are_the_shapes_the_adapters_read():
    """On ComfyUI 0.29 the real core nodes make these values; on 0.3.64 they do not exist (plain data only)."""
    if not HAS_CORE_BOXES:
        assert not (find_comfyui() / "comfy_extras" / "nodes_bounding_boxes.py").exists()
        return
    from comfy_extras.nodes_bounding_boxes import CreateBoundingBoxes
    from comfy_extras.nodes_images import BoundingBox

    out = CreateBoundingBoxes.execute(width=256, height=128, editor_state=CANVAS)
    assert out.args[1:] == (CANVAS_BBOXES, CANVAS_ELEMENTS)
    assert BoundingBox.execute(x=16, y=32, width=64, height=128).args == ({"x": 16, "y": 32, "width": 64,
                                                                           "height": 128},)


@pytest.fixture(scope="module")
def graph_nodes(pack, tmp_path_factory):
    run.load_nodes()
    install_tiny_models(tmp_path_factory.mktemp("tiny_models"))
    return comfy_nodes.NODE_CLASS_MAPPINGS


def boxes_graph(source: dict) -> dict:
    """``source`` (node "1", plus its own helpers) → Layout from Boxes → Draw Layout and, on 0.29, Layout to
    Boxes → Draw BBoxes; previews of both."""
    graph = {
        "10": {"class_type": "EmptyImage", "inputs": {"width": 256, "height": 128, "batch_size": 1, "color": 0}},
        "11": {"class_type": "InstanceAssembleLayoutFromBoxes", "inputs": {
            "prompt": "a poster", "captions": "", "box_format": "auto", "frame": 0, "width": 0, "height": 0,
            "image": ["10", 0], **source.pop("links")}},
        "12": {"class_type": "InstanceAssembleDrawLayout", "inputs": {"image": ["10", 0], "layout": ["11", 0]}},
        "13": {"class_type": "PreviewImage", "inputs": {"images": ["12", 0]}},
        "14": {"class_type": "InstanceAssembleLayoutToJSON", "inputs": {"layout": ["11", 0]}},
        **source,
    }
    if HAS_CORE_BOXES:
        graph["15"] = {"class_type": "InstanceAssembleLayoutToBoxes", "inputs": {"layout": ["11", 0]}}
        graph["16"] = {"class_type": "DrawBBoxes", "inputs": {"image": ["10", 0], "bboxes": ["15", 0]}}
        graph["17"] = {"class_type": "PreviewImage", "inputs": {"images": ["16", 0]}}
    return graph


def create_bounding_boxes(links: dict, values: dict) -> dict:
    """Create Bounding Boxes (0.29) linked into ``links``; on 0.3.64 the same data as plain API values (a list
    value wrapped in __value__, as the frontend sends list widgets)."""
    if HAS_CORE_BOXES:
        return {"1": {"class_type": "CreateBoundingBoxes", "inputs": {
            "width": 256, "height": 128, "editor_state": {"__value__": CANVAS}, "background": ["10", 0]}},
            "links": links}
    return {"links": {name: {"__value__": value} if isinstance(value, list) else value
                      for name, value in values.items()}}


def create_bounding_boxes_elements() -> dict:
    return create_bounding_boxes({"elements": ["1", 2]}, {"elements": CANVAS_ELEMENTS})


def create_bounding_boxes_bboxes() -> dict:
    return create_bounding_boxes({"bboxes": ["1", 1], "captions": "blue sky\na sign"},
                                 {"bboxes": CANVAS_BBOXES, "captions": "blue sky\na sign"})


def primitive_bounding_box_source() -> dict:
    if HAS_CORE_BOXES:
        return {"1": {"class_type": "PrimitiveBoundingBox", "inputs": {"x": 16, "y": 32, "width": 64, "height": 64}},
                "links": {"bboxes": ["1", 0], "captions": "a red cup"}}
    return {"links": {"bboxes": {"x": 16, "y": 32, "width": 64, "height": 64}, "captions": "a red cup"}}


SOURCES = [create_bounding_boxes_elements, create_bounding_boxes_bboxes, primitive_bounding_box_source]


@pytest.mark.parametrize("source", SOURCES, ids=lambda f: f.__name__)
def test_graphs_from_core_box_nodes_pass_comfyui_validation(graph_nodes, source):
    """ComfyUI's own prompt validation, link types included (BOUNDING_BOX, ARRAY → the adapter's inputs)."""
    import execution

    graph = boxes_graph(source())
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("validate", graph, None))
    assert valid, (error, node_errors)
    assert "1" in graph or not HAS_CORE_BOXES


@pytest.mark.parametrize("source", SOURCES, ids=lambda f: f.__name__)
def test_graphs_from_core_box_nodes_run(graph_nodes, source, tmp_path):
    graph = boxes_graph(source())
    written = run.execute(graph, tmp_path, "boxes")
    assert len(written["layout"]) == 1 and len(written["image"]) == (1 if HAS_CORE_BOXES else 0)
    for path in written["layout"] + written["image"]:  # boxes drawn on the black image
        assert np.asarray(Image.open(path)).any()


def test_the_core_types_link_to_the_adapter_inputs(graph_nodes):
    """ComfyUI's own link check (execution.validate_prompt) accepts core outputs on the adapter's inputs."""
    from comfy_execution.validation import validate_node_input

    inputs = graph_nodes["InstanceAssembleLayoutFromBoxes"].INPUT_TYPES()["optional"]
    assert validate_node_input("BOUNDING_BOX", inputs["bboxes"][0])
    assert validate_node_input("BOUNDING_BOXES", inputs["bboxes"][0])
    assert inputs["elements"][0] == "ARRAY"
    outputs = graph_nodes["InstanceAssembleLayoutToBoxes"].RETURN_TYPES
    if HAS_CORE_BOXES:
        from comfy_api.latest import io
        assert outputs == (io.BoundingBox.io_type, io.BoundingBoxes.io_type)
        assert io.Array.io_type == "ARRAY"


def test_masks_nodes_and_outputs(pack):
    masks = torch.zeros(2, 64, 128)
    masks[0, 16:48, 32:96] = 1
    masks[1, 0:8, 0:8] = 1
    base = pack.instanceassemble_core.layout.parse_layout(
        {"width": 256, "height": 128, "annos": [{"bbox": [0, 0, 256, 128], "category_name": "grass"}]})
    layout, prompt, width, height = from_masks(pack, masks, "a cat\na bird", layout=base)
    assert [i.text for i in layout.instances] == ["grass", "a cat", "a bird"] and (width, height) == (256, 128)
    alone = from_masks(pack, masks, "a cat\na bird", threshold=0.25)[0]
    assert (alone.width, alone.height) == (128, 64)  # the masks' own size
    out = pack.nodes.layout_adapters
    round_trip = out.InstanceAssembleLayoutToMasks().convert(layout)[0]
    assert round_trip.shape == (3, 128, 256) and round_trip[0].all()
    assert torch.equal(round_trip[1:, ::2, ::2], masks)
    assert out.InstanceAssembleLayoutToMasks().convert(layout, 128, 64)[0].shape == (3, 64, 128)
    again = pack.instanceassemble_core.layout.parse_layout(out.InstanceAssembleLayoutToJSON().convert(layout)[0])
    assert again == layout
    bboxes, boxes = out.InstanceAssembleLayoutToBoxes().convert(layout)
    assert bboxes == [boxes] and boxes[1]["label"] == "a cat" and boxes[1]["x"] == 64
    with pytest.raises(ValueError, match=r"InstanceAssembleLayoutFromMasks: captions: 1 caption lines for 2 boxes"):
        from_masks(pack, masks, "a cat")


# ---- mask regions through real samplers ----------------------------------------------------------------------

def aligned_layouts(pack, mask: torch.Tensor):
    """(box layout, mask layout): a 256x128 grass box, then a cat as a box and as ``mask`` [128, 256]."""
    core = pack.instanceassemble_core
    grass = {"width": 256, "height": 128, "prompt": "a cat on grass",
             "annos": [{"bbox": [0, 0, 256, 128], "category_name": "grass", "caption": "green grass"}]}
    boxes = core.layout.parse_layout({**grass, "annos": grass["annos"] + [
        {"bbox": [32, 48, 128, 112], "category_name": "a ginger cat"}]})
    masked = from_masks(pack, mask[None], "a ginger cat", layout=core.layout.parse_layout(grass))[0]
    return boxes, masked


def rectangle():
    mask = torch.zeros(128, 256)
    mask[48:112, 32:128] = 1
    return mask


def family_case(family, flux_clip, sd3_clip, flux_model, sd3_model, flux_weights, sd3_weights):
    if family == "flux":
        return flux_clip, flux_model, flux_weights, flux_conditioning(flux_clip, "a cat on grass"), 1.0
    positive = text_conditioning(sd3_clip, "a cat on grass")
    return sd3_clip, sd3_model, sd3_weights, positive, 3.0


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_a_rectangle_mask_gives_bitwise_the_box_result(pack, family, flux_clip, sd3_clip, flux_model, sd3_model,
                                                       flux_weights, sd3_weights):
    clip, model, weights, positive, cfg = family_case(family, flux_clip, sd3_clip, flux_model, sd3_model,
                                                      flux_weights, sd3_weights)
    boxes, masked = aligned_layouts(pack, rectangle())
    assert masked.instances[1].bbox == boxes.instances[1].bbox and masked.instances[1].region is not None

    def result(layout):
        patched = apply(pack, model, weights, encode(pack, clip, layout), grounding_ratio=0.5)
        return sample(patched, positive, positive, latent_for(layout), steps=4, cfg=cfg, seed=3)

    stock = sample(model, positive, positive, latent_for(boxes), steps=4, cfg=cfg, seed=3)
    by_box = result(boxes)
    assert (by_box - stock).abs().max() > 1e-3
    assert torch.equal(result(masked), by_box)

    shaped = rectangle()
    shaped[48:80, 32:80] = 0  # same bounding box, one 3x2-cell corner cut away: other tokens
    other = aligned_layouts(pack, shaped)[1]
    assert other.instances[1].bbox == boxes.instances[1].bbox
    assert (result(other) - by_box).abs().max() > 1e-4


# ---- the box layout's type name ----------------------------------------------------------------------------------

def test_workflows_saved_with_the_old_layout_type_still_run(graph_nodes, tmp_path):
    """A workflow saved before the rename carries "LAYOUT" on its links and slots; the API prompt has no types."""
    old = subprocess.run(["git", "-C", str(PACK_ROOT), "show", "f1e0154:example_workflows/flux1_schnell.json"],
                         capture_output=True, text=True, check=True).stdout
    assert '"LAYOUT"' in old
    path = tmp_path / "old.json"
    path.write_text(old, encoding="utf-8")
    written = run.execute(tiny_prompt(run.load_graph(path)), tmp_path, "old")
    assert len(written["image"]) == 1


def test_the_pack_uses_its_own_layout_type_everywhere(pack):
    layout_type = pack.nodes.layout_type.LAYOUT_TYPE
    for name, cls in pack.NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        specs = [spec[0] for group in types.values() for spec in group.values()]
        assert "LAYOUT" not in specs and "LAYOUT" not in cls.RETURN_TYPES, name
    assert layout_type in pack.nodes.encode.InstanceAssembleLayoutEncode.INPUT_TYPES()["required"]["layout"]
    for path in run.EXAMPLES.glob("*.json"):
        assert '"LAYOUT"' not in path.read_text(encoding="utf-8"), path.name
