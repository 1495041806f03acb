"""Layouts from and to other packs' data: ComfyUI core bounding boxes, Ideogram-style elements, detector JSON, masks.

Data shapes read (what a node receives at execution time):

- ComfyUI core ``BOUNDING_BOX``: one ``{x, y, width, height}`` dict in pixels (PrimitiveBoundingBox), a list of them,
  or a batch list of frames ``[[{...}, ...], ...]`` (Create Bounding Boxes, RT-DETR, SAM3 Detect, SDPose, MediaPipe);
  dicts may carry ``label``, ``score`` and ``metadata`` ``{type, text, desc}``. ``BOUNDING_BOXES`` is the flat list
  with ``metadata``.
- Create Bounding Boxes' ``elements``: ``{type: "obj" | "text", bbox: [ymin, xmin, ymax, xmax] on 0–1000, desc,
  text}``.
- Detector JSON: a list of ``{bbox | box: [4 numbers], label | category | class | name | phrase, caption | desc}``;
  ``{"bboxes" | "boxes": [[4 numbers], ...], "labels": [...]}`` (Florence-2, transformers' post-processing); or any
  of the core shapes above. ``box_format`` says how 4 numbers are read (``"auto"``: xyxy, in 0–1 when every number
  is at most 1, else in pixels).

Each box becomes an instance: its category is the detector's label and its caption the description (metadata
``desc``, a caption line); a box with only one of them uses it as its category, so the instance text is exactly
that text.
"""
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .layout import Instance, Layout, LayoutError, load_json_text
from .regions import Region, nearest_indices, region_token_indices

BOX_FORMATS = ("auto", "xyxy pixels", "xyxy 0-1", "xywh pixels", "xywh 0-1", "cxcywh 0-1", "yxyx 0-1000")
_LABEL_KEYS = ("label", "category", "category_name", "class", "class_name", "name", "phrase")
_TEXT_KEYS = ("caption", "desc", "description", "text")
_BOX_KEYS = ("bbox", "box")


def _fail(field: str, text: str, fix: str) -> LayoutError:
    return LayoutError(f"{field}: {text}", field=field, fix=fix)


@dataclass(frozen=True)
class FoundBox:
    """A box read from another format: xyxy in pixels of the source frame, its label and description."""
    bbox: tuple[float, float, float, float]
    label: str = ""
    description: str = ""


def _number(value: Any) -> bool:
    """A finite JSON number that fits a float (an integer of 10^400 does not)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _text_of(data: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        if isinstance(data.get(key), str) and data[key].strip():
            return data[key].strip()
    return ""


def _element_description(kind: str, text: str, desc: str) -> str:
    """Ideogram text elements render ``text``: their description says so."""
    if kind == "text" and text:
        return f'text "{text}"' + (f", {desc}" if desc else "")
    return desc


def _frame(value: Any, frame: int, field: str) -> list:
    """A core BOUNDING_BOX value (dict, list of dicts, batch list of frames) → the list of dicts of one frame."""
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise _fail(field, f"expected bounding boxes (a dict or a list), got {type(value).__name__}.",
                    "Connect a node that outputs BOUNDING_BOX, e.g. Create Bounding Boxes.")
    if value and all(isinstance(item, list) and all(isinstance(box, dict) for box in item) for item in value):
        if not 0 <= frame < len(value):
            raise _fail(field, f"the boxes hold {len(value)} frames (images of a batch); frame {frame} does not "
                               "exist.", f"Set frame to 0..{len(value) - 1}.")
        return value[frame]
    return value


def core_boxes(value: Any, frame: int = 0, field: str = "bboxes") -> list[FoundBox]:
    """Boxes of a core ``BOUNDING_BOX`` / ``BOUNDING_BOXES`` value (pixels, xywh keys)."""
    found = []
    for i, box in enumerate(_frame(value, frame, field)):
        name = f"{field}[{i}]"
        if not isinstance(box, dict) or not all(_number(box.get(k)) for k in ("x", "y", "width", "height")):
            raise _fail(name, f"expected {{x, y, width, height}} in pixels, got {box!r:.100}.",
                        "Give every box numeric x, y, width and height.")
        meta = box.get("metadata") if isinstance(box.get("metadata"), dict) else {}
        label = _text_of(box, ("label",)) or _text_of(meta, ("label",))
        description = _element_description(meta.get("type"), _text_of(meta, ("text",)), _text_of(meta, ("desc",)))
        x, y, w, h = (float(box[k]) for k in ("x", "y", "width", "height"))
        found.append(FoundBox((x, y, x + w, y + h), label, description))
    return found


def element_boxes(elements: Any, width: int, height: int, field: str = "elements") -> list[FoundBox]:
    """Boxes of Create Bounding Boxes' ``elements`` (bbox [ymin, xmin, ymax, xmax] on 0–1000) for a W × H image."""
    if isinstance(elements, dict):
        elements = [elements]
    if not isinstance(elements, list):
        raise _fail(field, f"expected a list of elements, got {type(elements).__name__}.",
                    "Connect Create Bounding Boxes' elements output.")
    found = []
    for i, element in enumerate(elements):
        name = f"{field}[{i}].bbox"
        bbox = element.get("bbox") if isinstance(element, dict) else None
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(_number(v) for v in bbox):
            raise _fail(name, f"expected [ymin, xmin, ymax, xmax] on 0–1000, got {bbox!r:.100}.",
                        "Give every element a bbox of 4 numbers.")
        ymin, xmin, ymax, xmax = (float(v) / 1000 for v in bbox)
        box = (min(xmin, xmax) * width, min(ymin, ymax) * height, max(xmin, xmax) * width, max(ymin, ymax) * height)
        description = _element_description(element.get("type"), _text_of(element, ("text",)),
                                           _text_of(element, ("desc",)))
        found.append(FoundBox(box, _text_of(element, ("label",)), description))
    return found


def _xyxy(numbers: list, box_format: str, width: int, height: int, normalised: bool) -> tuple:
    if box_format.startswith("yxyx"):
        y1, x1, y2, x2 = (v / 1000 for v in numbers)
        return (x1 * width, y1 * height, x2 * width, y2 * height)
    a, b, c, d = numbers
    if box_format.startswith("xywh"):
        c, d = a + c, b + d
    elif box_format.startswith("cxcywh"):
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    sx, sy = (width, height) if normalised else (1, 1)
    return (a * sx, b * sy, c * sx, d * sy)


def detector_boxes(data: Any, width: int, height: int, box_format: str = "auto", frame: int = 0,
                   field: str = "boxes_json") -> list[FoundBox]:
    """Boxes of a detector's JSON (text or parsed) for a W × H image; see the module docstring for the shapes."""
    if box_format not in BOX_FORMATS:
        raise _fail("box_format", f"unknown format {box_format!r}.", f"Use one of {', '.join(BOX_FORMATS)}.")
    if isinstance(data, str):
        if not data.strip():
            return []
        data = load_json_text(data, field)
    if isinstance(data, dict) and any(isinstance(data.get(k), list) for k in ("bboxes", "boxes")):
        key = "bboxes" if isinstance(data.get("bboxes"), list) else "boxes"
        labels = data.get("labels") if isinstance(data.get("labels"), list) else []
        items = [{"bbox": box, "label": labels[i] if i < len(labels) and isinstance(labels[i], str) else ""}
                 for i, box in enumerate(data[key])]
        field = f"{field}.{key}"
    else:
        items = _frame(data, frame, field)
    if not items:
        return []
    if all(isinstance(item, dict) and all(k in item for k in ("x", "y", "width", "height")) for item in items):
        return core_boxes(items, field=field)
    if box_format == "auto" and all(isinstance(item, dict) and ("type" in item or "desc" in item)
                                    and not _text_of(item, _LABEL_KEYS[:1]) for item in items):
        return element_boxes(items, width, height, field)

    boxes = []
    for i, item in enumerate(items):
        name = f"{field}[{i}]"
        numbers = next((item[k] for k in _BOX_KEYS if k in item), None) if isinstance(item, dict) else item
        if not isinstance(numbers, (list, tuple)) or len(numbers) != 4 or not all(_number(v) for v in numbers):
            raise _fail(name, f"expected a box of 4 numbers (or an object with \"bbox\"), got {item!r:.100}.",
                        "Write each detection as {\"bbox\": [x1, y1, x2, y2], \"label\": \"...\"}.")
        boxes.append((list(map(float, numbers)), item if isinstance(item, dict) else {}))
    if box_format == "auto":
        normalised = all(abs(v) <= 1 for numbers, _ in boxes for v in numbers)
        box_format = "xyxy 0-1" if normalised else "xyxy pixels"
    normalised = box_format.endswith("0-1")
    return [FoundBox(_xyxy(numbers, box_format, width, height, normalised),
                     _text_of(item, _LABEL_KEYS), _text_of(item, _TEXT_KEYS)) for numbers, item in boxes]


def caption_lines(captions: str, count: int, field: str = "captions") -> list[str]:
    """One caption per box from a multiline text ("" = none); the line count (less trailing empty lines beyond
    ``count``) must match the box count."""
    lines = captions.split("\n") if captions.strip() else []
    while len(lines) > count and not lines[-1].strip():
        lines.pop()
    if lines and len(lines) != count:
        raise _fail(field, f"{len(lines)} caption lines for {count} boxes.",
                    "Write one line per box, in box order (an empty line keeps a box's own text).")
    return [line.strip() for line in lines] or [""] * count


def _instance(box: FoundBox, caption: str) -> Instance:
    label, description = box.label, caption or box.description
    return Instance(box.bbox, label or description, description if label else "")


def _clamped(box: FoundBox, width: int, height: int) -> FoundBox:
    x1, y1, x2, y2 = box.bbox
    return FoundBox((min(max(x1, 0), width), min(max(y1, 0), height), min(max(x2, 0), width),
                     min(max(y2, 0), height)), box.label, box.description)


def layout_from_boxes(boxes: list[FoundBox], width: int, height: int, prompt: str = "", captions: str = "",
                      field: str = "boxes") -> tuple[Layout, list[str]]:
    """(validated layout, warnings): boxes reaching over the image edge are clamped to it (with a warning)."""
    lines = caption_lines(captions, len(boxes))
    warnings, instances = [], []
    for i, (box, line) in enumerate(zip(boxes, lines)):
        inside = _clamped(box, width, height)
        if inside.bbox != box.bbox:
            warnings.append(f"box {i} {[round(v, 1) for v in box.bbox]} reaches outside the {width}x{height} "
                            "image; it was clamped to the image.")
        instances.append(_instance(inside, line))
    layout = Layout(width, height, prompt, tuple(instances))
    try:
        return layout.validate(warnings=warnings), warnings
    except LayoutError as error:
        text = error.message.replace("boxes[", f"{field}[", 1)
        raise LayoutError(text, field=field, fix=error.fix) from None


def add_masks(layout: Layout, masks: Tensor, captions: str, threshold: float,
              field: str = "masks") -> Layout:
    """``layout`` plus one instance per mask of ``masks`` [N, H, W]: the mask's region (its tokens at the given
    threshold) and its bounding box scaled to the layout; a caption line per mask is its text."""
    lines = caption_lines(captions, masks.shape[0], "captions")
    grid = (layout.height // 16, layout.width // 16)
    added = []
    for i, (mask, line) in enumerate(zip(masks, lines)):
        region = Region.from_mask(mask, threshold)
        bbox = region.bbox(layout.width, layout.height)
        if bbox is None:
            raise _fail(f"{field}[{i}]", "the mask is empty (no value reaches 0.5).",
                        "Remove the empty mask from the batch, or check the node that made it.")
        if region_token_indices(region, *grid).numel() == 0:
            raise _fail(f"{field}[{i}]", f"the mask covers no 16-px cell of the {layout.width}x{layout.height} "
                                         f"image by at least threshold {threshold}.",
                        "Lower threshold, or make the mask larger.")
        if not line:
            raise _fail(f"captions[{i}]", f"mask {i} has no caption.", "Write one caption line per mask.")
        added.append(Instance(bbox, line, "", region))
    return Layout(layout.width, layout.height, layout.prompt, layout.instances + tuple(added), layout.seed)


def to_core_boxes(layout: Layout) -> list[dict]:
    """The layout as a core ``BOUNDING_BOXES`` list: ``{x, y, width, height, label, metadata}`` in layout pixels."""
    return [{"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1, "label": inst.category,
             "metadata": {"type": "obj", "text": "", "desc": inst.caption or inst.category, "palette": []}}
            for inst in layout.instances for (x1, y1, x2, y2) in [inst.bbox]]


def instance_masks(layout: Layout, width: int, height: int) -> Tensor:
    """[K, height, width] float32 masks, one per instance: its region, else its box; a pixel is inside when its
    centre is (nearest-pixel sampling of the region, box edges scaled from the layout's size)."""
    xs = (torch.arange(width, dtype=torch.float64) + 0.5) / width   # pixel centres, 0..1
    ys = (torch.arange(height, dtype=torch.float64) + 0.5) / height
    masks = torch.zeros(len(layout.instances), height, width)
    for k, inst in enumerate(layout.instances):
        if inst.region is not None:
            rows, cols = nearest_indices(height, inst.region.height), nearest_indices(width, inst.region.width)
            masks[k] = inst.region.mask()[rows][:, cols].float()
        else:
            x1, y1, x2, y2 = inst.bbox
            inside_x = (xs * layout.width >= x1) & (xs * layout.width < x2)
            inside_y = (ys * layout.height >= y1) & (ys * layout.height < y2)
            masks[k] = (inside_y[:, None] & inside_x[None, :]).float()
    return masks
