"""Layouts from other packs' boxes (plain data, as ComfyUI 0.3.64 gets them through the API) and back."""
import json

import pytest
import torch

from instanceassemble_core import interchange
from instanceassemble_core.layout import Instance, Layout, LayoutError, parse_layout
from instanceassemble_core.regions import Region

# The runtime shapes of ComfyUI 0.29's core nodes (tests/comfy/test_layout_adapters.py checks them against the
# real nodes): Create Bounding Boxes' bboxes (a batch list of frames) and elements, PrimitiveBoundingBox, RT-DETR.
CREATE_BBOXES = [[{"x": 0, "y": 0, "width": 512, "height": 256}, {"x": 128, "y": 256, "width": 256, "height": 512}]]
ELEMENTS = [{"type": "obj", "bbox": [0, 0, 250, 500], "desc": "a red kite"},
            {"type": "text", "bbox": [250, 125, 750, 375], "text": "SALE", "desc": "bold letters"}]
PRIMITIVE = {"x": 16, "y": 32, "width": 64, "height": 128}
DETECTIONS = [[{"x": 10.5, "y": 20.0, "width": 100.0, "height": 50.0, "label": "dog", "score": 0.9}]]


def texts(layout):
    return [inst.text for inst in layout.instances]


def test_core_boxes_of_every_shape():
    assert [b.bbox for b in interchange.core_boxes(CREATE_BBOXES)] == [(0, 0, 512, 256), (128, 256, 384, 768)]
    assert [b.bbox for b in interchange.core_boxes(PRIMITIVE)] == [(16, 32, 80, 160)]
    assert interchange.core_boxes(DETECTIONS)[0] == interchange.FoundBox((10.5, 20, 110.5, 70), "dog", "")
    with_meta = [{"x": 0, "y": 0, "width": 8, "height": 8, "metadata": {"type": "obj", "desc": "a cup"}}]
    assert interchange.core_boxes(with_meta)[0].description == "a cup"
    assert interchange.core_boxes([]) == [] and interchange.core_boxes([[]]) == []


def test_elements_are_yxyx_on_0_1000_with_desc_as_text():
    boxes = interchange.element_boxes(ELEMENTS, 1024, 512)
    assert boxes[0] == interchange.FoundBox((0, 0, 512, 128), "", "a red kite")
    assert boxes[1] == interchange.FoundBox((128, 128, 384, 384), "", 'text "SALE", bold letters')


@pytest.mark.parametrize("data, box_format, expected", [
    ([{"bbox": [10, 20, 110, 70], "label": "dog"}], "auto", (10, 20, 110, 70)),
    ([{"bbox": [0.25, 0.5, 0.5, 1.0], "label": "dog"}], "auto", (100, 100, 200, 200)),
    ([{"box": [10, 20, 100, 50], "class": "dog"}], "xywh pixels", (10, 20, 110, 70)),
    ([{"bbox": [0.25, 0.5, 0.25, 0.5], "name": "dog"}], "xywh 0-1", (100, 100, 200, 200)),
    ([{"bbox": [0.375, 0.75, 0.25, 0.5], "phrase": "dog"}], "cxcywh 0-1", (100, 100, 200, 200)),
    ([{"bbox": [500, 250, 1000, 500], "label": "dog"}], "yxyx 0-1000", (100, 100, 200, 200)),
    ({"bboxes": [[10, 20, 110, 70]], "labels": ["dog"]}, "auto", (10, 20, 110, 70)),     # Florence-2
    ({"boxes": [[10, 20, 110, 70]], "labels": ["dog"], "scores": [0.5]}, "auto", (10, 20, 110, 70)),
    ([[10, 20, 110, 70]], "xyxy pixels", (10, 20, 110, 70)),
])
def test_detector_json_formats(data, box_format, expected):
    for source in (data, json.dumps(data)):
        boxes = interchange.detector_boxes(source, 400, 200, box_format)
        assert [b.bbox for b in boxes] == [expected]
    assert boxes[0].label == ("" if isinstance(data, list) and isinstance(data[0], list) else "dog")


def test_detector_json_also_takes_core_shapes_and_elements():
    assert interchange.detector_boxes(json.dumps(CREATE_BBOXES), 1024, 1024) == interchange.core_boxes(CREATE_BBOXES)
    assert interchange.detector_boxes(ELEMENTS, 1024, 512) == interchange.element_boxes(ELEMENTS, 1024, 512)


def test_layout_texts_come_from_captions_then_descriptions_then_labels():
    boxes = [interchange.FoundBox((0, 0, 8, 8), "dog", "a brown dog"), interchange.FoundBox((0, 0, 8, 8), "cat"),
             interchange.FoundBox((0, 0, 8, 8), "", "a red kite")]
    layout, _ = interchange.layout_from_boxes(boxes, 64, 64)
    assert texts(layout) == ["dog, a brown dog", "cat", "a red kite"]
    layout, _ = interchange.layout_from_boxes(boxes, 64, 64, captions="\na white cat\n")
    assert texts(layout) == ["dog, a brown dog", "cat, a white cat", "a red kite"]


def test_boxes_over_the_edge_are_clamped_with_a_warning_and_bad_boxes_name_the_input():
    layout, warnings = interchange.layout_from_boxes([interchange.FoundBox((-2, 0, 66, 64), "sky")], 64, 64)
    assert layout.instances[0].bbox == (0, 0, 64, 64) and "clamped" in warnings[0]
    # zero-area and textless boxes are used as the official code uses them, with the layout's summary warning
    layout, warnings = interchange.layout_from_boxes([interchange.FoundBox((8, 8, 8, 20), "a"),
                                                      interchange.FoundBox((0, 0, 8, 8))], 64, 64, field="bboxes")
    assert [inst.bbox for inst in layout.instances] == [(8, 8, 8, 20), (0, 0, 8, 8)] and texts(layout)[1] == ""
    assert len(warnings) == 1 and "zero area" in warnings[0]
    with pytest.raises(LayoutError, match=r"bboxes\[0\].bbox: box 0 .*Fix:"):
        interchange.layout_from_boxes([interchange.FoundBox((40, 8, 20, 20), "a")], 64, 64, field="bboxes")
    with pytest.raises(LayoutError, match=r"captions: 1 caption lines for 2 boxes.*Fix: Write one line per box"):
        interchange.layout_from_boxes([interchange.FoundBox((0, 0, 8, 8), "a")] * 2, 64, 64, captions="x")
    with pytest.raises(LayoutError, match=r"bboxes: the boxes hold 1 frames.*frame 3.*Fix: Set frame to 0..0"):
        interchange.core_boxes(CREATE_BBOXES, frame=3)
    with pytest.raises(LayoutError, match=r"bboxes\[0\]: expected \{x, y, width, height\}"):
        interchange.core_boxes([{"x": 0, "y": 0}])
    with pytest.raises(LayoutError, match=r"boxes_json\[0\]: expected a box of 4 numbers"):
        interchange.detector_boxes([{"bbox": [1, 2, 3]}], 64, 64)
    with pytest.raises(LayoutError, match=r"boxes_json: not valid JSON"):
        interchange.detector_boxes("[{", 64, 64)


def test_masks_add_region_instances_with_their_bounding_box():
    masks = torch.zeros(2, 64, 128)
    masks[0, 16:48, 32:96] = 1
    masks[1, 0:4, 0:4] = 0.7  # 8x8 px of the layout: a quarter of a cell
    base = Layout(256, 128, "p", (Instance((0, 0, 256, 128), "sky"),))
    layout = interchange.add_masks(base, masks, "a cat\na bird", 0.25)
    assert texts(layout) == ["sky", "a cat", "a bird"]
    assert layout.instances[1].bbox == (64, 32, 192, 96) and layout.instances[1].region.threshold == 0.25
    assert layout.instances[2].bbox == (0, 0, 8, 8)
    with pytest.raises(LayoutError, match=r"masks\[1\]: the mask covers no 16-px cell.*threshold 0.5.*Fix: Lower"):
        interchange.add_masks(base, masks, "a\nb", 0.5)
    with pytest.raises(LayoutError, match=r"masks\[0\]: the mask is empty"):
        interchange.add_masks(base, torch.zeros(1, 8, 8), "a", 0.5)
    with pytest.raises(LayoutError, match=r"captions\[1\]: mask 1 has no caption"):
        interchange.add_masks(base, masks, "a cat\n\n", 0.25)


def test_layouts_out_as_core_boxes_masks_and_json():
    region = Region.from_mask(torch.ones(4, 4).tril())
    layout = Layout(64, 32, "", (Instance((8, 4, 40, 28), "dog", "a brown dog"),
                                 Instance(region.bbox(64, 32), "ramp", "", region)))
    boxes = interchange.to_core_boxes(layout)
    assert boxes[0] == {"x": 8, "y": 4, "width": 32, "height": 24, "label": "dog",
                        "metadata": {"type": "obj", "text": "", "desc": "a brown dog", "palette": []}}
    again, _ = interchange.layout_from_boxes(interchange.core_boxes(boxes), 64, 32)
    assert [i.bbox for i in again.instances] == [i.bbox for i in layout.instances]
    masks = interchange.instance_masks(layout, 64, 32)
    assert masks.shape == (2, 32, 64) and masks[0].sum() == 32 * 24 and masks[0, 4:28, 8:40].all()
    assert torch.equal(masks[1][::8, ::16].bool(), region.mask())
    assert parse_layout(layout.to_json()) == layout


# --- hostile data: only boxes or a LayoutError ---------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.sampled_from([10 ** 400, "\ud800"]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["x", "y", "width", "height", "bbox", "bboxes", "labels", "label", "desc", "type", "text"]),
        children, max_size=6),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ANY_JSON, as_text=st.booleans(), box_format=st.sampled_from(interchange.BOX_FORMATS))
def test_box_adapters_give_boxes_or_the_structured_error(data, as_text, box_format):
    for read in (lambda: interchange.detector_boxes(json.dumps(data) if as_text else data, 256, 128, box_format),
                 lambda: interchange.core_boxes(data),
                 lambda: interchange.element_boxes(data, 256, 128)):
        try:
            boxes = read()
        except LayoutError as error:
            assert error.field
            continue
        assert all(isinstance(box, interchange.FoundBox) for box in boxes)


@pytest.mark.parametrize("text", ["[" * 10000 + "]" * 10000, '[{"bbox": [1' + "0" * 5000 + ', 0, 1, 1]}]',
                                  '[{"bbox": [' + "1" * 400 + ', 0, 1, 1]}]'])
def test_detector_json_that_python_cannot_read_is_the_structured_error(text):
    with pytest.raises(LayoutError) as info:
        interchange.detector_boxes(text, 64, 64)
    assert info.value.field.startswith("boxes_json")
