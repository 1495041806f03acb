"""Hostile and messy layout input: only a layout or a LayoutError ever comes out, and real data that the official
code accepts is accepted with the official tokens and features, and one warning per layout."""
import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference_layout as ref
from instanceassemble_core import geometry
from instanceassemble_core.layout import (MAX_INSTANCES, MAX_SIZE, Layout, LayoutError, load_json_text,
                                          parse_layout)


def demo(annos, width=128, height=64, **extra):
    return {"prompt": "a scene", "width": width, "height": height, "annos": annos, **extra}


def anno(bbox, category="cat", caption=""):
    return {"bbox": bbox, "category_name": category, "caption": caption}


def error_of(source, **kwargs) -> LayoutError:
    with pytest.raises(LayoutError) as info:
        parse_layout(source, **kwargs)
    assert info.value.field and info.value.fix, info.value
    return info.value


def parsed(source, **kwargs) -> tuple[Layout, list[str]]:
    warnings = []
    return parse_layout(source, warnings=warnings, **kwargs), warnings


# --- item 1: exceptions other than LayoutError -----------------------------------------------------------------

@pytest.mark.parametrize("text, field", [
    ('{"prompt": "", "width": 1%s, "height": 64, "annos": []}' % ("0" * 400), "width"),  # beyond float range
    ('{"prompt": "", "width": 128, "height": 64, "annos": [{"bbox": [0, 0, 1%s, 5], "category_name": "a"}]}'
     % ("0" * 400), "annos[0].bbox"),
    ('{"prompt": "", "width": 1%s, "height": 64, "annos": []}' % ("0" * 5000), "json"),  # > 4300 digits
    ("[" * 10_000 + "]" * 10_000, "json"),
    ('{"annos": ' + "[" * 10_000 + "]" * 10_000 + "}", "json"),
])
def test_numbers_and_nesting_beyond_pythons_limits(text, field):
    err = error_of(text)
    assert err.field == field
    assert "nested too deeply" in str(err) or "digits" in str(err) or "out-of-range" in str(err) \
        or "from 16 to" in str(err)


def test_huge_integers_in_an_already_parsed_value():
    err = error_of(demo([anno([0, 0, 10 ** 5000, 5])]))
    assert err.field == "annos[0].bbox" and "5000 digits" in str(err)
    assert error_of(demo([], width=10 ** 5000)).field == "width"
    assert error_of(demo([anno([0, 0, 5, 5])], seed=10 ** 5000)).field == "seed"


@pytest.mark.parametrize("bad_id", [[1], {"a": 1}, [[2, 3]]])
def test_coco_ids_that_are_lists_or_objects(bad_id):
    coco = {"images": [{"id": 1, "width": 64, "height": 64}],
            "annotations": [{"image_id": 1, "bbox": [0, 0, 8, 8], "category_id": 3}],
            "categories": [{"id": 3, "name": "dog"}]}
    with_bad_category = json.loads(json.dumps(coco))
    with_bad_category["categories"][0]["id"] = bad_id
    assert error_of(with_bad_category).field == "categories[0].id"
    with_bad_reference = json.loads(json.dumps(coco))
    with_bad_reference["annotations"][0]["category_id"] = bad_id
    assert error_of(with_bad_reference).field == "annotations[0].category_id"
    with_bad_image = json.loads(json.dumps(coco))
    with_bad_image["images"][0]["id"] = bad_id
    with_bad_image["images"].append({"id": 2, "width": 64, "height": 64})
    assert error_of(with_bad_image, image="²").field == "image"


def test_unicode_digit_selector_is_an_id_like_any_text():
    records = [{"id": "²", "width": 64, "height": 64, "annos": [anno([0, 0, 8, 8], "a")]},
               {"id": 2, "width": 64, "height": 64, "annos": [anno([0, 0, 8, 8], "b")]}]
    assert parse_layout(records, image="²").instances[0].category == "a"
    assert parse_layout(records, image="2").instances[0].category == "b"
    assert error_of(records, image="³").field == "image"


# --- item 3: a lone surrogate ----------------------------------------------------------------------------------

@pytest.mark.parametrize("where, field", [("caption", "annos[0].caption"), ("category_name", "annos[0].category_name"),
                                          ("prompt", "prompt")])
def test_lone_surrogate_is_refused_by_the_parser(where, field):
    source = demo([anno([0, 0, 8, 8], "dog", "a dog")])
    if where == "prompt":
        source["prompt"] = "a \ud800 scene"
    else:
        source["annos"][0][where] = "x\udfff"
    for given_source in (source, json.dumps(source)):  # as a value and as JSON text (escaped surrogate)
        err = error_of(given_source)
        assert err.field == field and "unpaired surrogate" in str(err)
    assert parse_layout(demo([anno([0, 0, 8, 8], "dog", "a 🐕 dog")])).instances[0].caption == "a 🐕 dog"


# --- item 6: the size has the bounds of the nodes' size inputs --------------------------------------------------

@pytest.mark.parametrize("size", [10 ** 9, MAX_SIZE + 16, 1e9, 8])
def test_layout_size_is_bounded(size):
    err = error_of(demo([], width=size))
    assert err.field == "width" and str(MAX_SIZE) in str(err)
    assert error_of(demo([]), height=size).field == "height"
    assert parse_layout(demo([], width=MAX_SIZE)).width == MAX_SIZE


# --- real data the official code accepts ------------------------------------------------------------------------

def reference_tokens(layout: Layout):
    """(samples [K, 72], token indices, Flux RoPE centres) as the official code computes them."""
    boxes = [inst.bbox for inst in layout.instances]
    samples, _ = ref.dense_boxes(boxes, layout.width, layout.height, len(boxes))
    grid = ref.token_grid(layout.width, layout.height)
    return samples, ref.token_indices(samples, *grid), ref.layout_token_ids(samples, *grid)[:, 1:]


def assert_official_geometry(layout: Layout):
    samples, indices, centres = reference_tokens(layout)
    ours = geometry.dense_samples(layout)
    grid = ref.token_grid(layout.width, layout.height)
    assert torch.equal(ours, samples)
    assert torch.equal(geometry.fourier_features(ours), ref.fourier_embed(samples[None])[0])
    assert [t.tolist() for t in geometry.box_token_indices(ours, *grid)] == [t.tolist() for t in indices]
    assert torch.equal(geometry.layout_token_positions(ours, *grid), centres)


def test_boxes_slightly_outside_the_image_are_used_as_given():
    boxes = [[-0.01, 0, 64, 32], [64, 32, 128.01, 64.01], [10, -7.9, 20, 5], [100, 60, 135.5, 64]]
    layout, warnings = parsed(demo([anno(b, f"box{i}") for i, b in enumerate(boxes)]))
    assert [list(inst.bbox) for inst in layout.instances] == boxes  # unchanged: the official code does not clip
    assert_official_geometry(layout)
    assert len(warnings) == 1
    assert "annos[0], annos[1], annos[2], annos[3] reach up to 7.9 px past the image edge" in warnings[0]


def test_zero_area_boxes_get_the_official_tokens():
    boxes = [[10, 10, 10, 40], [20, 30, 60, 30], [50, 50, 50, 50], [0, 0, 0, 0], [127.5, 0, 127.5, 63]]
    layout, warnings = parsed(demo([anno(b, "pole") for b in boxes]))
    assert [list(inst.bbox) for inst in layout.instances] == boxes
    assert_official_geometry(layout)
    tokens = geometry.box_token_indices(geometry.dense_samples(layout), 4, 8)
    assert [len(t) for t in tokens] == [2, 2, 1, 0, 3]  # widened to one column or row; none at the origin
    assert len(warnings) == 1 and "annos[0], annos[1], annos[2], annos[3], annos[4] have zero area" in warnings[0]


def test_box_without_category_or_caption_has_the_empty_text():
    layout, warnings = parsed(demo([anno([0, 0, 8, 8], "dog"), anno([8, 8, 16, 16], "", ""),
                                    {"bbox": [16, 16, 24, 24]}]))
    assert [inst.text for inst in layout.instances] == ["dog", "", ""]
    assert warnings == ["annos[1], annos[2] have neither a category nor a caption (encoded as an empty text, as the "
                        "official code does)."]
    canonical, warnings = parsed(Layout(64, 64, "", layout.instances[1:2]).to_json())
    assert canonical.instances[0].text == "" and "boxes[0] has neither" in warnings[0]


def test_one_warning_sums_up_every_adjustment_and_a_clean_layout_has_none():
    layout, warnings = parsed(demo([anno([0, 0, 8, 8], ""), anno([0, 0, 0, 8], "a"), anno([0, 0, 128.25, 8], "b")]))
    assert len(warnings) == 1
    assert all(words in warnings[0] for words in ("past the image edge", "zero area", "neither a category"))
    assert parsed(demo([anno([0, 0, 8, 8], "a"), anno([0, 0, 128, 64], "b")]))[1] == []


@pytest.mark.parametrize("count, warned", [(50, False), (51, True), (150, True), (MAX_INSTANCES, True)])
def test_more_boxes_than_the_official_scripts_keep(count, warned):
    layout, warnings = parsed(demo([anno([i % 120, 0, i % 120 + 8, 8], f"b{i}") for i in range(count)]))
    assert len(layout.instances) == count
    if warned:
        assert warnings == [f"the layout has {count} boxes: the official demo and inference scripts keep the first "
                            f"50 (its DenseLayout benchmark the first 100) and drop the rest; this pack uses all "
                            f"{count}."]
    else:
        assert warnings == []


def test_json_lines_as_datasets_to_json_writes_them():
    records = [{"id": 7, "prompt": "first", "height": 64, "width": 128, "annos": [anno([0, 0, 8, 8], "a")]},
               {"id": 8, "prompt": "second", "height": 32, "width": 32, "annos": [anno([1, 1, 9, 9], "b", "c")]}]
    text = "\n".join(json.dumps(record) for record in records) + "\n"
    assert parse_layout(text, image=8).prompt == "second"
    assert parse_layout(text, image="7").instances[0].category == "a"
    assert error_of(text).field == "image"
    assert parse_layout(json.dumps(records[0]) + "\n").prompt == "first"
    broken = error_of(text + '{"id": 9, "annos": [\n')
    assert broken.field == "json" and "line 3 of the JSON Lines text" in str(broken)
    not_lines = error_of('{"id": 7}\n[1, 2]\n')
    assert "line 2 of the JSON Lines text is not a JSON object" in str(not_lines)
    trailing = error_of('{"width": 64,\n "height": 64} x')  # one JSON value with trailing text: the plain error
    assert "not valid JSON: Extra data at line 2" in str(trailing)


def test_load_json_text_names_the_field():
    assert load_json_text('{"a": 1}', "body") == {"a": 1}
    for text in ("[" * 10_000, "1" * 5000, "{"):
        with pytest.raises(LayoutError) as info:
            load_json_text(text, "body")
        assert info.value.field == "body"


# --- property-based: only a layout or a LayoutError -------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25)
def mostly(valid):
    """``valid`` two times in three, else any JSON value."""
    return st.one_of(valid, valid, JSON_VALUES)


NUMBERS = st.integers(-20, 300) | st.floats(-20, 300) | st.sampled_from([10 ** 400, -(10 ** 400), 1e308])
SIZES = mostly(st.sampled_from([16, 64, 128, 256, 1e9]))
TEXTS = mostly(st.text(max_size=6) | st.just("\ud800"))
IDS = mostly(st.integers(0, 3) | st.sampled_from(["1", "²"]))
BBOX = mostly(st.lists(mostly(NUMBERS), min_size=4, max_size=4))
DEMO_BOX = st.fixed_dictionaries({"bbox": BBOX}, optional={"category_name": TEXTS, "caption": TEXTS})
DEMO = st.fixed_dictionaries({"annos": mostly(st.lists(mostly(DEMO_BOX), max_size=5))},
                             optional={"width": SIZES, "height": SIZES, "prompt": TEXTS, "caption": TEXTS,
                                       "seed": mostly(st.integers()), "id": IDS})
CANONICAL = st.fixed_dictionaries(
    {"format": mostly(st.just("instanceassemble.layout")), "version": mostly(st.just(1)),
     "boxes": mostly(st.lists(mostly(st.fixed_dictionaries({"bbox": BBOX},
                                                          optional={"category": TEXTS, "caption": TEXTS})),
                              max_size=5))},
    optional={"width": SIZES, "height": SIZES, "prompt": TEXTS, "seed": mostly(st.integers())})
COCO = st.fixed_dictionaries({
    "images": mostly(st.lists(mostly(st.fixed_dictionaries(
        {"id": IDS}, optional={"width": SIZES, "height": SIZES, "file_name": TEXTS, "caption": TEXTS})),
        max_size=3)),
    "annotations": mostly(st.lists(mostly(st.fixed_dictionaries(
        {"image_id": IDS, "category_id": IDS, "bbox": BBOX}, optional={"caption": TEXTS})), max_size=5)),
    "categories": mostly(st.lists(mostly(st.fixed_dictionaries({"id": IDS, "name": TEXTS})), max_size=3))})
LAYOUT_SHAPED = DEMO | CANONICAL | COCO | st.lists(DEMO, max_size=3)
SELECTORS = st.none() | st.text(max_size=4) | st.integers()


def only_a_layout_or_the_error(source, image=None, width=None, height=None):
    try:
        result = parse_layout(source, image=image, width=width, height=height)
    except LayoutError as error:
        assert error.field and str(error)
        return
    assert isinstance(result, Layout)
    json.loads(result.to_json())  # whatever was accepted can be saved again


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES | LAYOUT_SHAPED, SELECTORS)
def test_any_json_value_gives_a_layout_or_the_error(value, image):
    only_a_layout_or_the_error(value, image=image)
    only_a_layout_or_the_error(json.dumps(value), image=image)


@settings(max_examples=300, deadline=None)
@given(st.text(), SELECTORS, st.none() | st.integers() | st.floats())
def test_any_text_gives_a_layout_or_the_error(text, image, size):
    only_a_layout_or_the_error(text, image=image, width=size, height=size)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 200), st.floats(-50, 200), st.floats(-50, 200), st.floats(-50, 200)),
                max_size=6),
       st.sampled_from([16, 48, 128]), st.sampled_from([16, 64, 96]))
def test_accepted_boxes_get_the_official_geometry(boxes, width, height):
    try:
        layout = parse_layout(demo([anno(list(b)) for b in boxes], width=width, height=height))
    except LayoutError:
        return
    assert_official_geometry(layout)
