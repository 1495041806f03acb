"""Hostile and messy input through the real nodes: a structured error naming the node and the field, or the
layout with one logged warning; bounded work for any caption; NaN settings refused before sampling."""
import json
import logging
import math

import pytest
import torch
from PIL import Image, ImageDraw

from tools.pack_nodes import LAYOUT_256x128, apply, encode

FROM_JSON = "InstanceAssembleLayoutFromJSON"
EDITOR = "InstanceAssembleLayoutEditor"
DEEP = "[" * 10_000 + "]" * 10_000
HOSTILE = [  # (layout text, the JSON field the error names)
    (json.dumps(LAYOUT_256x128).replace('"width": 256', '"width": 1' + "0" * 400), "width"),
    (json.dumps(LAYOUT_256x128).replace("[64, 32, 250, 100]", "[64, 32, 1" + "0" * 400 + ", 100]"), "annos[1].bbox"),
    (json.dumps(LAYOUT_256x128).replace('"width": 256', '"width": 1' + "0" * 5000), "json"),
    (DEEP, "json"),
    (json.dumps(LAYOUT_256x128).replace('"a tiny bird"', '"a tiny \\ud83d bird"'), "annos[3].caption"),
    (json.dumps(LAYOUT_256x128).replace('"width": 256', '"width": 1000000000'), "width"),
    (json.dumps({"images": [{"id": 1, "width": 64, "height": 64}],
                 "annotations": [{"image_id": 1, "bbox": [0, 0, 8, 8], "category_id": [3]}],
                 "categories": [{"id": 3, "name": "dog"}]}), "annotations[0].category_id"),
    (json.dumps({"images": [{"id": 1, "width": 64, "height": 64}], "annotations": [],
                 "categories": [{"id": {"a": 1}, "name": "dog"}]}), "categories[0].id"),
]


def from_json(pack, text, **kw):
    return pack.nodes.layout_nodes.InstanceAssembleLayoutFromJSON().parse(text, **kw)


def editor(pack):
    return pack.nodes.editor.InstanceAssembleLayoutEditor


@pytest.mark.parametrize("text, field", HOSTILE)
def test_layout_from_json_gives_the_structured_error(pack, text, field):
    with pytest.raises(pack.instanceassemble_core.layout.LayoutError) as error:
        from_json(pack, text)
    assert str(error.value).startswith(f"{FROM_JSON}: json ({field}): ")
    assert error.value.field == field and "Fix:" in str(error.value)


@pytest.mark.parametrize("text, field", HOSTILE)
def test_editor_validation_gives_the_structured_error(pack, text, field):
    message = editor(pack).VALIDATE_INPUTS(width=256, height=128, layout=text)
    assert isinstance(message, str) and message.startswith(f"{EDITOR}: layout ({field}): "), message


def test_unicode_digit_image_selector(pack):
    records = [{"id": i, "width": 64, "height": 64, "annos": [{"bbox": [0, 0, 8, 8], "category_name": f"c{i}"}]}
               for i in (1, 2)]
    with pytest.raises(ValueError, match=r"^InstanceAssembleLayoutFromJSON: json \(image\): .*no layout with id "
                                         r"'²' \(available: 1, 2\)"):
        from_json(pack, json.dumps(records), image="²")
    assert from_json(pack, json.dumps(records), image=" 2 ")[0].instances[0].category == "c2"


def test_editor_validation_uses_its_own_size_inputs(pack):
    sizeless = json.dumps({k: v for k, v in LAYOUT_256x128.items() if k not in ("width", "height")})
    node = editor(pack)
    assert node.VALIDATE_INPUTS(width=256, height=128, layout=sizeless) is True
    assert node.VALIDATE_INPUTS(width=None, height=128, layout=sizeless) is True  # linked: checked at run time
    too_small = node.VALIDATE_INPUTS(width=128, height=64, layout=sizeless)  # the boxes are past a 128x64 image
    assert too_small.startswith(f"{EDITOR}: layout (annos[0].bbox): ") and "outside the 128x64 image" in too_small
    assert node.VALIDATE_INPUTS(width=8, height=128, layout=sizeless).startswith(f"{EDITOR}: width: 8 is outside")
    assert node.VALIDATE_INPUTS(width=256, height=9000, layout=None).startswith(f"{EDITOR}: height: 9000")
    layout, prompt = node().build(256, 128, sizeless)
    assert (layout.width, layout.height, prompt) == (256, 128, LAYOUT_256x128["prompt"])


def test_real_data_is_accepted_with_one_warning_naming_the_node(pack, caplog):
    data = json.loads(json.dumps(LAYOUT_256x128))
    data["annos"][0]["bbox"] = [-0.01, 0, 128, 128.01]  # detector / COCO rounding
    data["annos"][1]["bbox"] = [64, 32, 64, 100]  # zero area
    data["annos"].append({"bbox": [10, 10, 20, 20]})  # neither category nor caption
    with caplog.at_level(logging.WARNING):
        layout = from_json(pack, json.dumps(data))[0]
    assert layout.instances[0].bbox == (-0.01, 0, 128, 128.01) and layout.instances[4].text == ""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{FROM_JSON}: json: annos[0] reaches up to 0.01 px")
    assert "annos[1] has zero area" in warnings[0] and "annos[4] has neither a category nor a caption" in warnings[0]


def test_boxes_without_text_encode_as_the_empty_text(pack, flux_clip):
    annos = [{"bbox": [0, 0, 32, 32], "category_name": "", "caption": ""},
             {"bbox": [0, 0, 16, 16], "category_name": "a"}]
    layout = from_json(pack, json.dumps({"width": 64, "height": 64, "annos": annos}))[0]
    encoded = encode(pack, flux_clip, layout)
    _, pooled = pack.nodes.encode.encode_instance_texts(flux_clip, ["", "a"])
    assert torch.equal(encoded.pooled, pooled)


class CountingDraw(ImageDraw.ImageDraw):
    """PIL's own ImageDraw, counting its text measurements and the characters measured."""

    def __init__(self, image):
        super().__init__(image)
        self.measurements = self.characters = 0

    def textlength(self, text, *args, **kwargs):
        self.measurements += 1
        self.characters += len(text)
        return super().textlength(text, *args, **kwargs)


@pytest.mark.parametrize("length", [20_000, 2 * 1024 * 1024])
def test_label_fitting_is_bounded_for_any_caption_length(pack, length):
    draw_module = pack.nodes.draw
    counting = CountingDraw(Image.new("RGBA", (512, 512)))
    font = draw_module._font(draw_module.font_size(512, 512))
    label = draw_module._fit_text(counting, "a" + "very long caption " * (length // 18), font, 200)
    assert label.endswith("...") and counting.textlength(label, font=font) <= 200
    assert counting.measurements <= 2 + math.ceil(math.log2(201)) + 1
    assert counting.characters <= counting.measurements * 205


def test_draw_layout_with_a_two_megabyte_caption(pack):
    text = json.dumps({"width": 256, "height": 128, "annos": [
        {"bbox": [0, 0, 128, 64], "category_name": "", "caption": "x" * (2 * 1024 * 1024)}]})
    layout = from_json(pack, text)[0]
    out = pack.nodes.draw.InstanceAssembleDrawLayout().draw(torch.zeros(1, 128, 256, 3), layout)[0]
    assert out.shape == (1, 128, 256, 3) and out.abs().sum() > 0


@pytest.mark.parametrize("setting", ["layout_scale", "grounding_ratio"])
def test_nan_settings_are_refused_before_sampling(pack, flux_model, flux_weights, flux_clip, layout, setting):
    encoded = encode(pack, flux_clip, layout)
    with pytest.raises(ValueError, match=rf"^InstanceAssembleApply: {setting}: nan is not a number from 0.0 to"):
        apply(pack, flux_model, flux_weights, encoded, **{setting: float("nan")})
    with pytest.raises(ValueError, match=rf"^InstanceAssembleApply: {setting}: 5.0 is not a number"):
        apply(pack, flux_model, flux_weights, encoded, **{setting: 5.0})  # a linked value skips ComfyUI's check


@pytest.mark.parametrize("text, field", HOSTILE[:5])
def test_runner_reports_a_hostile_layout_file_with_the_field(pack, tmp_path, text, field):
    from tools import run
    run.load_nodes()
    path = tmp_path / "layout.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(run.RunError) as error:
        run.layout_graph(path, "flux-dev")
    assert str(error.value).startswith(f"{path}: {FROM_JSON}: json ({field}): ")


def test_runner_floors_a_json_lines_layout_to_the_official_grid(pack, tmp_path):
    from tools import run
    run.load_nodes()
    record = {"id": 3, "prompt": "a chair", "width": 1500, "height": 1000,
              "annos": [{"bbox": [658, 176, 1199, 848], "category_name": "chair", "caption": ""}]}
    path = tmp_path / "dense.jsonl"
    path.write_text(json.dumps(record) + "\n")
    inputs = next(node["inputs"] for node in run.layout_graph(path, "flux-dev").values()
                  if node["class_type"] == FROM_JSON)
    assert (inputs["width"], inputs["height"]) == (1488, 992)  # 93 × 62 tokens, as W//16 × H//16


@pytest.mark.parametrize("content, message", [(b"\xff\xfe{}", "not UTF-8 text"),
                                              (b"[" * 100000 + b"]" * 100000, "nested too deeply")])
def test_runner_reports_unreadable_workflow_files(tmp_path, content, message):
    from tools import run
    path = tmp_path / "graph.json"
    path.write_bytes(content)
    with pytest.raises(run.RunError, match=message):
        run.load_graph(path)
