"""Layout parsing and validation: every supported JSON form, and an actionable error for every bad input."""
import json
from pathlib import Path

import pytest

from instanceassemble_core import layout
from instanceassemble_core.layout import Instance, Layout, LayoutError, parse_layout

LAYOUTS = Path(__file__).resolve().parents[1] / "data" / "layouts"


def demo(annos, width=100, height=100, **extra):
    return {"prompt": "a scene", "width": width, "height": height, "annos": annos, **extra}


def anno(bbox, category="cat", caption=""):
    return {"bbox": bbox, "category_name": category, "caption": caption}


def coco():
    """Two images; image 7 has two boxes given as xywh."""
    return {
        "images": [{"id": 7, "file_name": "street.jpg", "width": 200, "height": 100},
                   {"id": 9, "file_name": "park.jpg", "width": 64, "height": 64}],
        "annotations": [
            {"id": 1, "image_id": 7, "bbox": [10, 20, 30, 40], "category_id": 3},
            {"id": 2, "image_id": 9, "bbox": [0, 0, 8, 8], "category_id": 3},
            {"id": 3, "image_id": 7, "bbox": [100, 0, 100, 100], "category_id": 5, "caption": "red, parked"},
        ],
        "categories": [{"id": 3, "name": "person"}, {"id": 5, "name": "car"}],
    }


def error_of(source, **kwargs) -> LayoutError:
    with pytest.raises(LayoutError) as info:
        parse_layout(source, **kwargs)
    return info.value


def assert_actionable(err: LayoutError, field: str):
    assert err.field == field
    assert field in str(err)
    assert err.fix and str(err).endswith(" Fix: " + err.fix)


# --- instance text -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("category, caption, text", [
    ("dog", "", "dog"),
    ("dog", "brown, sleeping", "dog, brown, sleeping"),
    ("", "brown dog", ", brown dog"),
    ("", "", ""),
    ("dog", " ", "dog,  "),  # the reference tests the caption's truthiness, not its stripped value
])
def test_instance_text_joins_category_and_caption(category, caption, text):
    assert Instance((0, 0, 1, 1), category, caption).text == text


# --- good input ------------------------------------------------------------------------------------------------

def test_bigchair_demo_json():
    result = parse_layout((LAYOUTS / "bigchair.json").read_text())
    assert (result.width, result.height, result.seed) == (1500, 1000, None)
    assert result.prompt.startswith("This is a photo showcasing a giant red rocking chair")
    assert len(result.instances) == 4
    assert result.instances[0].bbox == (658, 176, 1199, 848)
    assert result.instances[0].category == "giant red rocking chair"
    assert [i.category for i in result.instances] == ["giant red rocking chair", "green trees", "grass", "cloudy sky"]


def test_cactus_demo_json_keeps_input_order():
    result = parse_layout((LAYOUTS / "cactus.json").read_text())
    assert (result.width, result.height) == (1500, 1000)
    assert [i.bbox for i in result.instances] == [(515, 230, 801, 534), (4, 3, 1495, 996), (816, 362, 1058, 640)]
    assert result.instances[1].text == "soil, Brown, dry ground with scattered organic matter."


def test_eagle_demo_json_reads_seed():
    result = parse_layout(json.loads((LAYOUTS / "eagle_left.json").read_text()))
    assert (result.width, result.height, result.seed) == (512, 512, 682)
    assert result.prompt == "a golden eagle standing on a rock."
    assert [i.category for i in result.instances] == ["eagle", "head", "beak", "eye"]
    assert result.instances[3].bbox == (245, 61, 270, 86)


def test_demo_download_stores_global_prompt_under_caption():
    source = {"caption": "a cat on a mat", "width": 64, "height": 32, "annos": [anno([0, 0, 8, 8], "cat", "tabby")]}
    result = parse_layout(source)
    assert result.prompt == "a cat on a mat"
    assert result.instances == (Instance((0, 0, 8, 8), "cat", "tabby"),)


def test_dense_layout_record():
    record = {"id": 12, "prompt": "p", "width": 100, "height": 50, "annos": [anno([1, 2, 3, 4], "cup", "blue")]}
    assert parse_layout(record) == Layout(100, 50, "p", (Instance((1, 2, 3, 4), "cup", "blue"),))


def test_dense_layout_list_picks_record_by_id():
    records = [{"id": 1, "prompt": "first", "width": 16, "height": 16, "annos": [anno([0, 0, 5, 5], "a")]},
               {"id": 2, "prompt": "second", "width": 32, "height": 32, "annos": [anno([0, 0, 5, 5], "b")]}]
    assert parse_layout(records, image=2).prompt == "second"
    assert parse_layout(json.dumps(records), image="1").prompt == "first"
    assert parse_layout(records[:1]).prompt == "first"


def test_dense_layout_list_without_choice_lists_ids():
    records = [{"id": i, "width": 16, "height": 16, "annos": [anno([0, 0, 5, 5])]} for i in (31, 32, 33)]
    err = error_of(records)
    assert_actionable(err, "image")
    assert "31, 32, 33" in str(err)
    err = error_of(records, image=99)
    assert_actionable(err, "image")
    assert "99" in str(err) and "31, 32, 33" in str(err)


def test_coco_picks_image_and_converts_xywh():
    result = parse_layout(coco(), image=7)
    assert (result.width, result.height) == (200, 100)
    assert result.instances == (Instance((10, 20, 40, 60), "person", ""),
                                Instance((100, 0, 200, 100), "car", "red, parked"))
    assert parse_layout(json.dumps(coco()), image="street.jpg") == result


def test_coco_single_image_needs_no_choice():
    data = coco()
    data["images"] = data["images"][1:]
    result = parse_layout(data)
    assert (result.width, result.height) == (64, 64)
    assert result.instances == (Instance((0, 0, 8, 8), "person", ""),)


def test_coco_with_several_images_lists_choices():
    err = error_of(coco())
    assert_actionable(err, "image")
    assert "7 (street.jpg)" in str(err) and "9 (park.jpg)" in str(err)
    assert_actionable(error_of(coco(), image="beach.jpg"), "image")


def test_coco_errors_name_the_annotation():
    data = coco()
    data["annotations"][2]["bbox"] = [100, 0, -5, 10]
    assert_actionable(error_of(data, image=7), "annotations[2].bbox")
    data = coco()
    data["annotations"][2]["category_id"] = 42
    assert_actionable(error_of(data, image=7), "annotations[2].category_id")
    data = coco()
    data["annotations"][2]["bbox"] = [150, 0, 100, 100]  # x + w = 250 > 200
    err = error_of(data, image=7)
    assert_actionable(err, "annotations[2].bbox")
    assert "car" in str(err)


def test_canonical_to_dict():
    source = Layout(640, 480, "a room", (Instance((1, 2, 30.5, 40), "lamp", "brass"),), seed=5)
    assert source.to_dict() == {
        "format": "instanceassemble.layout", "version": 1, "width": 640, "height": 480, "prompt": "a room",
        "boxes": [{"bbox": [1, 2, 30.5, 40], "category": "lamp", "caption": "brass"}], "seed": 5,
    }
    assert "seed" not in Layout(640, 480).to_dict()
    assert '"bbox": [1, 2, 30.5, 40]' in source.to_json()
    assert source.to_json(indent=2).count("\n") > 5


def test_canonical_round_trip():
    source = parse_layout((LAYOUTS / "eagle_left.json").read_text())
    again = parse_layout(source.to_json())
    assert again == source
    assert again.to_dict() == source.to_dict()
    empty = Layout(1024, 768)
    assert parse_layout(empty.to_json()) == empty


def test_resized_scales_each_axis():
    source = Layout(200, 100, "p", (Instance((20, 10, 100, 50), "a", "b"),), seed=3)
    result = source.resized(100, 400)
    assert result == Layout(100, 400, "p", (Instance((10, 40, 50, 200), "a", "b"),), seed=3)


def test_size_override_resizes_a_sized_source():
    result = parse_layout((LAYOUTS / "bigchair.json").read_text(), width=750, height=500)
    assert (result.width, result.height) == (750, 500)
    assert result.instances[0].bbox == (329, 88, 599.5, 424)


def test_size_override_is_required_for_an_unsized_source():
    source = {"prompt": "p", "annos": [anno([0, 0, 10, 30])]}
    assert_actionable(error_of(source), "width")
    assert_actionable(error_of(source, width=64), "height")
    result = parse_layout(source, width=64, height=32)
    assert (result.width, result.height) == (64, 32)
    assert result.instances[0].bbox == (0, 0, 10, 30)
    assert_actionable(error_of(source, width=64, height=16), "annos[0].bbox")  # checked against the override


def test_validate_returns_self_and_names_boxes():
    good = Layout(16, 16, "", (Instance((0, 0, 5, 5), "a"),))
    assert good.validate() is good
    bad = Layout(16, 16, "", (Instance((0, 0, 5, 5), "a"), Instance((5, 5, 4, 9), "b")))
    with pytest.raises(LayoutError) as info:
        bad.validate()
    assert_actionable(info.value, "boxes[1].bbox")
    with pytest.raises(LayoutError) as info:
        good.validate(max_instances=0)
    assert_actionable(info.value, "boxes")


def test_validate_false_keeps_an_out_of_bounds_box():
    result = parse_layout(demo([anno([0, 0, 150, 10])]), validate=False)
    assert result.instances[0].bbox == (0, 0, 150, 10)


# --- bad input -------------------------------------------------------------------------------------------------

def test_malformed_json_reports_line_and_column():
    err = error_of('{"width": 10,\n  "height": }')
    assert_actionable(err, "json")
    assert "line 2, column 13" in str(err)


def test_unknown_format_lists_expected_keys():
    err = error_of({"objects": []})
    assert_actionable(err, "json")
    assert "objects" in err.message
    for key in ('"format"', '"annos"', '"images"', '"annotations"'):
        assert key in err.fix


def test_canonical_from_a_newer_version():
    data = Layout(64, 64).to_dict() | {"version": 2}
    err = error_of(data)
    assert_actionable(err, "version")
    assert "newer version" in str(err)
    assert_actionable(error_of(Layout(64, 64).to_dict() | {"format": "other.layout"}), "format")


@pytest.mark.parametrize("source, field", [
    ({"format": "instanceassemble.layout", "version": 1, "width": 16, "height": 16}, "boxes"),
    (demo([{"category_name": "cat"}]), "annos[0].bbox"),
    (demo([anno([0, 0, 5, 5]), "not an object"]), "annos[1]"),
    (demo([anno([0, 0, 5, 5], category=7)]), "annos[0].category_name"),
    (demo([anno([0, 0, 5, 5])], seed="42"), "seed"),
])
def test_missing_or_mistyped_fields(source, field):
    assert_actionable(error_of(source), field)


@pytest.mark.parametrize("bbox", [[1, 2, 3], [1, 2, 3, 4, 5], "0 0 5 5", ["1", 2, 3, 4], [0, 0, True, 5],
                                  [0, 0, float("nan"), 5]])
def test_non_numeric_or_wrong_length_bbox(bbox):
    err = error_of(demo([anno([0, 0, 5, 5]), anno(bbox)]))
    assert_actionable(err, "annos[1].bbox")
    assert "[x1, y1, x2, y2]" in err.fix


@pytest.mark.parametrize("bbox, axis", [([50, 10, 40, 20], "x2 < x1"), ([10, 50, 20, 40], "y2 < y1")])
def test_inverted_box_suggests_swapping(bbox, axis):
    err = error_of(demo([anno([0, 0, 5, 5]), anno([0, 0, 5, 5]), anno(bbox, "grass")]))
    assert_actionable(err, "annos[2].bbox")
    assert axis in err.message and "box 2 ('grass')" in err.message
    assert "Swap" in err.fix


@pytest.mark.parametrize("bbox", [[-9, 0, 10, 10], [0, -8.5, 10, 10], [0, 0, 108.5, 10], [0, 0, 10, 109],
                                  [120, 0, 130, 10]])
def test_box_outside_the_image(bbox):
    err = error_of(demo([anno(bbox, "kite")]))
    assert_actionable(err, "annos[0].bbox")
    assert "outside the 100x100 image" in err.message
    assert "Clamp" in err.fix and "width/height" in err.fix


def test_box_touching_the_image_edges_is_inside():
    assert parse_layout(demo([anno([0, 0, 100, 100])])).instances[0].bbox == (0, 0, 100, 100)


@pytest.mark.parametrize("value", [0, -5, 8, 512.5, "512", True, 16385, 1e9, 10 ** 400, float("inf")])
def test_bad_size(value):
    source = demo([anno([0, 0, 5, 5])])
    source["width"] = value
    assert_actionable(error_of(source), "width")
    assert_actionable(error_of(demo([anno([0, 0, 5, 5])]), height=value), "height")
    data = coco()
    data["images"][1]["height"] = value
    assert_actionable(error_of(data, image=9), "images[1].height")
    with pytest.raises(LayoutError) as info:
        Layout(16, value).validate()
    assert_actionable(info.value, "height")


def test_integral_float_size_is_accepted():
    assert parse_layout(demo([anno([0, 0, 5, 5])], width=100.0)).width == 100


def test_too_many_boxes_is_refused():
    boxes = [anno([0, 0, 5, 5])] * (layout.MAX_INSTANCES + 1)
    err = error_of(demo(boxes))
    assert_actionable(err, "annos")
    assert "201 boxes" in err.message and "200" in err.fix
    assert len(parse_layout(demo(boxes[:layout.MAX_INSTANCES])).instances) == 200


def test_empty_text_is_an_error():
    assert_actionable(error_of("  "), "json")
    assert_actionable(error_of(b"{}"), "json")
