"""ComfyUI 0.29's core box nodes on ComfyUI 0.3.64, where they do not exist: their outputs as plain data.

``create_bounding_boxes_elements`` computes what Create Bounding Boxes outputs as ``elements`` for a canvas
(tests/comfy/test_layout_adapters.py checks it against the real node on 0.29). ``without_core_box_nodes`` turns an
API prompt that starts at Create Bounding Boxes into one for 0.3.64: the node is removed and its ``elements`` links
become that plain value, as the API would send it.
"""
import comfyui_version

HAS_CORE_BOXES = tuple(int(p) for p in comfyui_version.__version__.split(".")[:2]) >= (0, 29)
CREATE_BOUNDING_BOXES = "CreateBoundingBoxes"
ELEMENTS_SLOT = 2


def _unwrapped(value):
    return value["__value__"] if isinstance(value, dict) and "__value__" in value else value


def create_bounding_boxes_elements(editor_state: list, width: int, height: int) -> list:
    """[{type, bbox: [ymin, xmin, ymax, xmax] on 0–1000, desc (, text)}] of a canvas of pixel boxes."""
    def grid(value: float) -> int:
        return max(0, min(1000, round(value * 1000)))

    elements = []
    for box in editor_state:
        meta = box.get("metadata", {})
        kind = "text" if meta.get("type") == "text" else "obj"
        x, y, w, h = box["x"] / width, box["y"] / height, box["width"] / width, box["height"] / height
        element = {"type": kind, "bbox": [grid(y), grid(x), grid(y + h), grid(x + w)]}
        if kind == "text":
            element["text"] = meta.get("text", "")
        element["desc"] = meta.get("desc", "")
        elements.append(element)
    return elements


def without_core_box_nodes(prompt: dict) -> dict:
    """The prompt with each Create Bounding Boxes node replaced by its elements as plain API values."""
    elements = {node_id: create_bounding_boxes_elements(_unwrapped(node["inputs"]["editor_state"]),
                                                        node["inputs"]["width"], node["inputs"]["height"])
                for node_id, node in prompt.items() if node["class_type"] == CREATE_BOUNDING_BOXES}
    plain = {}
    for node_id, node in prompt.items():
        if node_id in elements:
            continue
        inputs = {}
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and value[0] in elements:
                assert value[1] == ELEMENTS_SLOT, f"only the elements output of {CREATE_BOUNDING_BOXES} is supported"
                value = {"__value__": elements[value[0]]}
            inputs[name] = value
        plain[node_id] = {**node, "inputs": inputs}
    return plain
