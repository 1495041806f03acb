"""Hostile input to a running ComfyUI server: the parse route answers 400 with {error, field, fix} for any bad
request body or layout text (never a 500), 200 with the warnings for real data, and the editor's pre-run check
gives the structured message."""
import json
import urllib.error
import urllib.request

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROUTE = "/instanceassemble/parse_layout"
EDITOR = "InstanceAssembleLayoutEditor"
LAYOUT = {"prompt": "a cat", "width": 256, "height": 128,
          "annos": [{"bbox": [10, 20, 120, 100], "category_name": "cat", "caption": "a ginger cat"}]}
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def post_raw(server, body: bytes, path: str = ROUTE):
    """(status, parsed JSON answer) of a POST with exactly ``body``."""
    req = urllib.request.Request(server.base_url + path, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def assert_structured_400(status, body, field=None):
    assert status == 400, body
    assert set(body) == {"error", "field", "fix"} and isinstance(body["error"], str) and body["error"], body
    if field is not None:
        assert body["field"] == field and body["fix"], body


def with_text(text: str) -> bytes:
    return json.dumps({"text": text}).encode()


def test_bad_request_bodies_get_400(comfy_server):
    deep = b"[" * 10_000 + b"]" * 10_000
    assert_structured_400(*post_raw(comfy_server, deep), field="body")
    assert_structured_400(*post_raw(comfy_server, b'{"text": ' + deep + b"}"), field="body")
    assert_structured_400(*post_raw(comfy_server, b'{"text": 1' + b"0" * 5000 + b"}"), field="body")
    assert_structured_400(*post_raw(comfy_server, b"\xff\xfe not utf-8"), field="body")
    assert_structured_400(*post_raw(comfy_server, b"{"), field="body")
    assert_structured_400(*post_raw(comfy_server, b""), field="body")
    assert_structured_400(*post_raw(comfy_server, b'["text"]'), field="text")
    assert_structured_400(*post_raw(comfy_server, b'{"text": ["a"]}'), field="text")
    sizeless = json.dumps({k: v for k, v in LAYOUT.items() if k not in ("width", "height")})
    for width in ("wide", [1], 1e400, 10 ** 9, -16):
        body = json.dumps({"text": sizeless, "width": width, "height": 128}).encode()
        assert_structured_400(*post_raw(comfy_server, body), field="width")


def test_hostile_layout_texts_get_400_naming_the_field(comfy_server):
    cases = [
        (json.dumps(LAYOUT).replace('"width": 256', '"width": 1' + "0" * 400), "width"),
        (json.dumps(LAYOUT).replace('"width": 256', '"width": 1' + "0" * 5000), "json"),
        ("[" * 10_000 + "]" * 10_000, "json"),
        (json.dumps(LAYOUT).replace('"a ginger cat"', '"a \\udc00 cat"'), "annos[0].caption"),
        (json.dumps({"images": [{"id": 1, "width": 64, "height": 64}], "annotations": [],
                     "categories": [{"id": [3], "name": "dog"}]}), "categories[0].id"),
        (json.dumps([dict(LAYOUT, id=1), dict(LAYOUT, id=2)]), "image"),
    ]
    for text, field in cases:
        assert_structured_400(*post_raw(comfy_server, with_text(text)), field=field)


def test_real_data_is_accepted_with_its_warning(comfy_server):
    data = json.loads(json.dumps(LAYOUT))
    data["annos"] += [{"bbox": [200, 0, 256.01, 128]}, {"bbox": [50, 50, 50, 80], "category_name": "pole"}]
    status, body = post_raw(comfy_server, with_text(json.dumps(data)))
    assert status == 200, body
    assert body["layout"]["boxes"][1] == {"bbox": [200, 0, 256.01, 128], "category": "", "caption": ""}
    assert len(body["warnings"]) == 1
    assert all(words in body["warnings"][0] for words in ("annos[1] reaches up to 0.01 px", "annos[2] has zero area",
                                                          "annos[1] has neither a category nor a caption"))
    lines = "\n".join(json.dumps(dict(LAYOUT, id=i, prompt=f"record {i}")) for i in (1, 2))
    status, body = post_raw(comfy_server, with_text(lines))  # JSON Lines of several records: choose one
    assert_structured_400(status, body, field="image")
    status, body = post_raw(comfy_server, with_text(json.dumps(LAYOUT)))
    assert status == 200 and body["warnings"] == []


def test_editor_prerun_check_gives_the_structured_message(comfy_server):
    def queue(layout_text, width=256, height=128):
        prompt = {
            "1": {"class_type": EDITOR, "inputs": {"width": width, "height": height, "layout": layout_text}},
            "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 0}},
            "3": {"class_type": "InstanceAssembleDrawLayout", "inputs": {"image": ["2", 0], "layout": ["1", 0]}},
            "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
        }
        return comfy_server.request("/prompt", {"prompt": prompt, "client_id": "e2e-hostile"})

    status, body = queue(json.dumps(LAYOUT).replace('"width": 256', '"width": 1' + "0" * 400))
    assert status == 400, body
    details = json.dumps(body["node_errors"]["1"])
    assert f"{EDITOR}: layout (width): " in details and "Exception when validating" not in details
    status, body = queue(json.dumps(LAYOUT), width=8)
    assert status == 400 and f"{EDITOR}: width: 8 is outside" in json.dumps(body["node_errors"]["1"])
    sizeless = json.dumps({k: v for k, v in LAYOUT.items() if k not in ("width", "height")})
    status, body = queue(sizeless)  # no size in the JSON: the node's width/height inputs give it
    assert status == 200, body
    comfy_server.wait_history(body["prompt_id"])


@settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
@given(st.text(max_size=200) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["width", "height", "annos", "bbox", "boxes", "format", "prompt", "images"]) | st.text(
            max_size=5), children, max_size=4), max_leaves=20).map(json.dumps))
def test_any_layout_text_gets_a_layout_or_a_structured_400(comfy_server, text):
    status, body = post_raw(comfy_server, with_text(text))
    if status == 200:
        assert set(body) == {"layout", "warnings"} and body["layout"]["format"] == "instanceassemble.layout"
    else:
        assert_structured_400(status, body)


@settings(max_examples=40, deadline=None, suppress_health_check=HEALTH)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_request_body_gets_a_layout_or_a_structured_400(comfy_server, body):
    status, answer = post_raw(comfy_server, body)
    assert status in (200, 400), answer
    if status == 400:
        assert_structured_400(status, answer)
