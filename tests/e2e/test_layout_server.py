"""The editor node and the parse route in a running ComfyUI server, over HTTP (no browser)."""
import io
import json

from PIL import Image

EDITOR = "InstanceAssembleLayoutEditor"
DEMO = {  # the official demo JSON form
    "prompt": "a cat and a dog on grass", "width": 512, "height": 256,
    "annos": [{"bbox": [10, 20, 200, 240], "category_name": "cat", "caption": "a ginger cat"},
              {"bbox": [260, 30, 500, 250], "category_name": "dog", "caption": ""}],
}


def canonical(width, height, boxes, prompt="a test"):
    return json.dumps({"format": "instanceassemble.layout", "version": 1, "width": width, "height": height,
                       "prompt": prompt, "boxes": boxes})


def test_parse_route_returns_canonical_json_or_the_parser_error(comfy_server):
    status, body = comfy_server.request("/instanceassemble/parse_layout", {"text": json.dumps(DEMO)})
    assert status == 200, body
    assert body["layout"] == {
        "format": "instanceassemble.layout", "version": 1, "width": 512, "height": 256,
        "prompt": "a cat and a dog on grass",
        "boxes": [{"bbox": [10, 20, 200, 240], "category": "cat", "caption": "a ginger cat"},
                  {"bbox": [260, 30, 500, 250], "category": "dog", "caption": ""}]}

    # also under /api (the frontend's api.fetchApi); a layout without a size takes the editor's size
    sizeless = {k: v for k, v in DEMO.items() if k not in ("width", "height")}
    status, body = comfy_server.request("/api/instanceassemble/parse_layout",
                                        {"text": json.dumps(sizeless), "width": 1024, "height": 512})
    assert status == 200, body
    assert (body["layout"]["width"], body["layout"]["height"]) == (1024, 512)
    assert body["layout"]["boxes"][0]["bbox"] == [10, 20, 200, 240]

    status, body = comfy_server.request("/instanceassemble/parse_layout", {"text": '{"prompt": "x", "annos": [{'})
    assert status == 400 and body["field"] == "json" and "not valid JSON" in body["error"]
    bad = dict(DEMO, annos=[{"bbox": [300, 20, 200, 240], "category_name": "cat"}])
    status, body = comfy_server.request("/instanceassemble/parse_layout", {"text": json.dumps(bad)})
    assert status == 400 and body["field"] == "annos[0].bbox" and "inverted" in body["error"], body
    status, body = comfy_server.request("/instanceassemble/parse_layout", {"layout": "x"})
    assert status == 400 and "text" in body["error"]


def test_invalid_layout_is_refused_naming_the_node_and_field(comfy_server):
    prompt = {
        "1": {"class_type": EDITOR, "inputs": {"width": 512, "height": 512,
                                               "layout": canonical(512, 512, [{"bbox": [64, 0, 0, 64],
                                                                               "category": "cat"}])}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "3": {"class_type": "InstanceAssembleDrawLayout", "inputs": {"image": ["2", 0], "layout": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    status, body = comfy_server.request("/prompt", {"prompt": prompt, "client_id": "e2e-tests"})
    assert status == 400, body
    details = json.dumps(body["node_errors"]["1"])
    assert EDITOR in details and "boxes[0]" in details and "is inverted" in details


def test_editor_layout_drawn_by_the_server(comfy_server, pack):
    boxes = [{"bbox": [128, 64, 512, 448], "category": "cat", "caption": "a ginger cat"},
             {"bbox": [640, 128, 960, 384], "category": "dog", "caption": "<b>not bold</b>"}]
    layout = canonical(1024, 512, boxes)
    prompt = {
        # the widget saved a 1024x512 layout; the node's width/height say 512x256: boxes scale by 1/2
        "1": {"class_type": EDITOR, "inputs": {"width": 512, "height": 256, "layout": layout}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 256, "height": 128, "batch_size": 1, "color": 0}},
        "3": {"class_type": "InstanceAssembleDrawLayout", "inputs": {"image": ["2", 0], "layout": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    entry = comfy_server.run(prompt)
    assert json.loads(entry["prompt"][2]["1"]["inputs"]["layout"]) == json.loads(layout)
    image = entry["outputs"]["4"]["images"][0]
    png = comfy_server.get_bytes(f"/view?filename={image['filename']}&subfolder={image['subfolder']}"
                                 f"&type={image['type']}")
    pixels = Image.open(io.BytesIO(png)).convert("RGB")
    assert pixels.size == (256, 128)
    color = pack.nodes.draw.box_color
    # 1024x512 layout drawn on a 256x128 image: box 0 spans x 32..128, y 16..112; box 1 x 160..240, y 32..96
    assert pixels.getpixel((32, 80)) == color(0) and pixels.getpixel((127, 80)) == color(0)
    assert pixels.getpixel((160, 80)) == color(1) and pixels.getpixel((239, 80)) == color(1)
    assert pixels.getpixel((80, 80)) == (0, 0, 0) and pixels.getpixel((250, 5)) == (0, 0, 0)


def test_editor_node_accepts_other_formats_through_the_api(comfy_server):
    prompt = {
        "1": {"class_type": EDITOR, "inputs": {"width": 512, "height": 256, "layout": json.dumps(DEMO)}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 0}},
        "3": {"class_type": "InstanceAssembleDrawLayout", "inputs": {"image": ["2", 0], "layout": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    comfy_server.run(prompt)
