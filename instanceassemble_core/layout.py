"""Layouts: an image size, a global prompt and captioned boxes; parsers for every supported JSON form.

Boxes are always xyxy in pixels of the target image (spec §1). ``parse_layout`` reads:

- our canonical JSON (what the box-editor widget saves, ``Layout.to_dict``);
- the official demo JSON and DenseLayout records (``annos`` with ``category_name``/``caption``), also a list of
  DenseLayout records;
- COCO instances JSON (``bbox`` is xywh there and is converted).

Every problem is a ``LayoutError`` naming the JSON field and saying how to fix it.
"""
import json
import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

from .regions import Region

MAX_INSTANCES = 200
LAYOUT_FORMAT = "instanceassemble.layout"
LAYOUT_VERSION = 1

_CHOICES_SHOWN = 10


class LayoutError(ValueError):
    """A layout that cannot be used; ``field`` is the JSON path at fault, ``fix`` tells the user what to do."""

    def __init__(self, message: str, field: str | None = None, fix: str | None = None):
        super().__init__(message + (" Fix: " + fix if fix else ""))
        self.message = message
        self.field = field
        self.fix = fix


def _fail(field: str, text: str, fix: str | None = None) -> LayoutError:
    return LayoutError(f"{field}: {text}", field=field, fix=fix)


@dataclass(frozen=True)
class Instance:
    """One box: ``bbox`` is (x1, y1, x2, y2) in image pixels; ``region``, when set, is the instance's mask
    (its tokens replace the box's, see ``regions.py``) and ``bbox`` is the mask's bounding box."""

    bbox: tuple[float, float, float, float]
    category: str
    caption: str = ""
    region: Region | None = None

    @property
    def text(self) -> str:
        """The text the instance encoder sees: ``category`` or ``category, caption`` (spec §1, comma kept)."""
        if not self.caption:
            return self.category
        return f"{self.category}, {self.caption}"


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    prompt: str = ""
    instances: tuple[Instance, ...] = ()
    seed: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "instances", tuple(self.instances))

    def to_dict(self) -> dict:
        """The canonical JSON object (``format``/``version`` header, ``boxes`` in order, ``seed`` only when set)."""
        data = {
            "format": LAYOUT_FORMAT,
            "version": LAYOUT_VERSION,
            "width": self.width,
            "height": self.height,
            "prompt": self.prompt,
            "boxes": [_box_dict(inst) for inst in self.instances],
        }
        if self.seed is not None:
            data["seed"] = self.seed
        return data

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def resized(self, width: int, height: int) -> "Layout":
        """The same layout for a ``width`` × ``height`` image: each axis of every box scales proportionally."""
        width = _check_size(width, "width")
        height = _check_size(height, "height")

        def scaled(inst: Instance) -> Instance:
            x1, y1, x2, y2 = inst.bbox
            bbox = (x1 * width / self.width, y1 * height / self.height,
                    x2 * width / self.width, y2 * height / self.height)
            return replace(inst, bbox=bbox)

        return Layout(width, height, self.prompt, tuple(map(scaled, self.instances)), self.seed)

    def validate(self, max_instances: int = MAX_INSTANCES) -> "Layout":
        """Return ``self`` when every box is usable, else raise ``LayoutError`` naming ``boxes[i]``."""
        _check_size(self.width, "width")
        _check_size(self.height, "height")
        _validate_boxes(self, max_instances, [f"boxes[{i}]" for i in range(len(self.instances))], "boxes")
        return self


def parse_layout(source: str | dict | list, *, width: int | None = None, height: int | None = None,
                 image: str | int | None = None, validate: bool = True) -> Layout:
    """Read a layout from a JSON string or an already parsed JSON value, detecting its format.

    ``width``/``height`` override the size: a source with its own size is ``resized`` to them, a source without
    one needs them. ``image`` picks one image (id, or COCO ``file_name``; a DenseLayout record without ``id`` goes
    by its list index) from a DenseLayout list or a COCO file; single-layout sources ignore it. With ``validate``
    the boxes are checked against the source's own size before any resize.
    """
    data = _decode(source)
    draft = _read_any(data, None if image in (None, "") else image)

    override_w = None if width is None else _check_size(width, "width")
    override_h = None if height is None else _check_size(height, "height")
    own_w = draft.width if draft.width is not None else override_w
    own_h = draft.height if draft.height is not None else override_h
    for name, own in (("width", own_w), ("height", own_h)):
        if own is None:
            raise _fail(name, f"the layout JSON has no image {name}.",
                        f"Add \"{name}\" to the JSON, or set the {name} input to the image {name} in pixels.")

    layout = Layout(own_w, own_h, draft.prompt, draft.instances, draft.seed)
    if validate:
        _validate_boxes(layout, MAX_INSTANCES, draft.box_fields, draft.list_field)
    target = (override_w or own_w, override_h or own_h)
    return layout if target == (own_w, own_h) else layout.resized(*target)


@dataclass
class _Draft:
    """A parsed source before its size is settled; ``box_fields[i]`` is the JSON path of instance i."""

    width: int | None
    height: int | None
    prompt: str
    instances: list[Instance]
    seed: int | None
    box_fields: list[str]
    list_field: str


def _decode(source: Any) -> Any:
    if isinstance(source, (dict, list)):
        return source
    if not isinstance(source, str):
        raise _fail("json", f"expected JSON text or a parsed JSON object, got {type(source).__name__}.",
                    "Pass the layout as a JSON string.")
    if not source.strip():
        raise _fail("json", "the layout text is empty.", "Draw boxes in the editor or paste a layout JSON.")
    try:
        return json.loads(source)
    except json.JSONDecodeError as err:
        raise _fail("json", f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.",
                    f"Correct the JSON near line {err.lineno}, column {err.colno} "
                    "(usually a missing comma, quote or bracket).") from None


def _read_any(data: Any, image: str | int | None) -> _Draft:
    if isinstance(data, list):
        return _read_record_list(data, image)
    if isinstance(data, dict):
        if "format" in data:
            return _read_canonical(data)
        if "annos" in data:
            return _read_record(data, "")
        if "images" in data and "annotations" in data:
            return _read_coco(data, image)
    found = (f"top-level keys: {', '.join(sorted(map(str, data))) or 'none'}" if isinstance(data, dict)
             else f"a JSON {type(data).__name__}")
    raise _fail("json", f"unknown layout format ({found}).",
                f"Use one of: our layout JSON with \"format\": \"{LAYOUT_FORMAT}\" and \"boxes\"; "
                "the official demo / DenseLayout JSON with \"annos\"; "
                "or COCO instances JSON with \"images\", \"annotations\" and \"categories\".")


def _read_canonical(data: dict) -> _Draft:
    if data["format"] != LAYOUT_FORMAT:
        raise _fail("format", f"unknown format {data['format']!r}.", f"Set \"format\" to \"{LAYOUT_FORMAT}\".")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail("version", f"expected a positive integer, got {version!r}.",
                    f"Set \"version\" to {LAYOUT_VERSION}.")
    if version > LAYOUT_VERSION:
        raise _fail("version", f"this layout was made by a newer version of ComfyUI-InstanceAssemble "
                               f"(layout version {version}; this version reads up to {LAYOUT_VERSION}).",
                    "Update ComfyUI-InstanceAssemble, or re-draw the layout with this version's box editor.")
    boxes = _require_list(data, "boxes", "boxes")
    instances = [
        _read_instance(_require_dict(box, f"boxes[{i}]"), f"boxes[{i}]", "category", "caption")
        for i, box in enumerate(boxes)
    ]
    return _Draft(_optional_size(data, "width", "width"), _optional_size(data, "height", "height"),
                  _optional_text(data, "prompt", "prompt"), instances, _optional_seed(data, "seed"),
                  [f"boxes[{i}]" for i in range(len(instances))], "boxes")


def _read_record(data: dict, path: str) -> _Draft:
    """Official demo JSON / one DenseLayout record; ``path`` is its JSON path prefix ("" or "[i].")."""
    prompt_key = "prompt" if "prompt" in data else "caption"
    annos = _require_list(data, "annos", f"{path}annos")
    box_fields = [f"{path}annos[{i}]" for i in range(len(annos))]
    instances = [
        _read_instance(_require_dict(anno, name), name, "category_name", "caption")
        for anno, name in zip(annos, box_fields)
    ]
    return _Draft(_optional_size(data, "width", f"{path}width"), _optional_size(data, "height", f"{path}height"),
                  _optional_text(data, prompt_key, f"{path}{prompt_key}"), instances,
                  _optional_seed(data, f"{path}seed"), box_fields, f"{path}annos")


def _read_record_list(records: list, image: str | int | None) -> _Draft:
    if not records:
        raise _fail("json", "the layout list is empty.", "Provide at least one DenseLayout record.")
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "annos" not in record:
            raise _fail(f"[{i}]", "a layout list must hold DenseLayout records (objects with \"annos\").",
                        "Pass one layout object, or a list of DenseLayout records.")
    ids = [str(record.get("id", i)) for i, record in enumerate(records)]
    if image is None:
        if len(records) == 1:
            return _read_record(records[0], "[0].")
        raise _fail("image", f"the list holds {len(records)} layouts; choose one by id "
                             f"({_some_choices(ids)}).", "Set image to one of those ids.")
    if str(image) not in ids:
        raise _fail("image", f"no layout with id {image!r} (available: {_some_choices(ids)}).",
                    "Set image to one of the listed ids.")
    index = ids.index(str(image))
    return _read_record(records[index], f"[{index}].")


def _read_coco(data: dict, image: str | int | None) -> _Draft:
    images = _require_list(data, "images", "images")
    for i, entry in enumerate(images):
        _require_dict(entry, f"images[{i}]")
    choices = [f"{entry.get('id')} ({entry.get('file_name', '?')})" for entry in images]
    if image is None:
        if len(images) != 1:
            raise _fail("image", f"the COCO file holds {len(images)} images; choose one by id or file_name "
                                 f"({_some_choices(choices)}).", "Set image to one of those ids or file names.")
        index = 0
    else:
        matches = [i for i, entry in enumerate(images)
                   if str(entry.get("id")) == str(image) or entry.get("file_name") == image]
        if not matches:
            raise _fail("image", f"no COCO image with id or file_name {image!r} "
                                 f"(available: {_some_choices(choices)}).",
                        "Set image to one of the listed ids or file names.")
        index = matches[0]
    entry = images[index]

    names = {}
    for i, category in enumerate(_require_list(data, "categories", "categories")):
        category = _require_dict(category, f"categories[{i}]")
        names[category.get("id")] = _optional_text(category, "name", f"categories[{i}].name")

    instances, box_fields = [], []
    for j, annotation in enumerate(_require_list(data, "annotations", "annotations")):
        name = f"annotations[{j}]"
        annotation = _require_dict(annotation, name)
        if annotation.get("image_id") != entry.get("id"):
            continue
        if annotation.get("category_id") not in names:
            raise _fail(f"{name}.category_id", f"category {annotation.get('category_id')!r} is not in categories.",
                        "Add it to \"categories\" or correct category_id.")
        if "bbox" not in annotation:
            raise _fail(f"{name}.bbox", "missing bbox.", "Add \"bbox\": [x, y, width, height] in pixels.")
        x, y, w, h = _bbox_numbers(annotation["bbox"], f"{name}.bbox", "[x, y, width, height]")
        if w < 0 or h < 0:
            raise _fail(f"{name}.bbox", f"COCO boxes are [x, y, width, height]; width and height must not be "
                                        f"negative, got {annotation['bbox']}.", "Use the absolute width and height.")
        instances.append(Instance((x, y, x + w, y + h), names[annotation["category_id"]],
                                  _optional_text(annotation, "caption", f"{name}.caption")))
        box_fields.append(name)
    prompt_key = "prompt" if "prompt" in entry else "caption"
    return _Draft(_optional_size(entry, "width", f"images[{index}].width"),
                  _optional_size(entry, "height", f"images[{index}].height"),
                  _optional_text(entry, prompt_key, f"images[{index}].{prompt_key}"),
                  instances, None, box_fields, "annotations")


def _box_dict(inst: Instance) -> dict:
    box = {"bbox": [_json_number(v) for v in inst.bbox], "category": inst.category, "caption": inst.caption}
    if inst.region is not None:
        box["region"] = inst.region.to_dict()
    return box


def _read_instance(box: dict, name: str, category_key: str, caption_key: str) -> Instance:
    if "bbox" not in box:
        raise _fail(f"{name}.bbox", "missing bbox.", "Add \"bbox\": [x1, y1, x2, y2] in image pixels.")
    return Instance(_bbox_numbers(box["bbox"], f"{name}.bbox", "[x1, y1, x2, y2]"),
                    _optional_text(box, category_key, f"{name}.{category_key}"),
                    _optional_text(box, caption_key, f"{name}.{caption_key}"),
                    _optional_region(box, f"{name}.region"))


def _optional_region(box: dict, name: str) -> Region | None:
    """A box's ``region``: {"size": [height, width], "counts": [run lengths, COCO column-major], "threshold"}."""
    value = box.get("region")
    if value is None:
        return None
    fix = ("Write region as {\"size\": [height, width], \"counts\": [run lengths], \"threshold\": 0.5} "
           "(COCO uncompressed RLE, as InstanceAssemble Layout to JSON writes it), or remove it.")
    if not isinstance(value, dict) or not isinstance(value.get("size"), list) or len(value["size"]) != 2 \
            or not isinstance(value.get("counts"), list):
        raise _fail(name, f"expected an object with size [height, width] and counts, got {value!r:.80}.", fix)
    numbers = [*value["size"], *value["counts"], value.get("threshold", 0.5)]
    if not all(_is_number(v) for v in numbers) or not all(float(v).is_integer() for v in numbers[:-1]):
        raise _fail(name, "size and counts must be whole numbers and threshold a number.", fix)
    try:
        return Region(int(value["size"][0]), int(value["size"][1]), tuple(int(c) for c in value["counts"]),
                      float(value.get("threshold", 0.5)))
    except ValueError as error:
        raise _fail(name, str(error), fix) from None


def _validate_boxes(layout: Layout, max_instances: int, box_fields: Sequence[str], list_field: str) -> None:
    """Check the box count and each box against the layout's own size; ``box_fields[i]`` names box i."""
    count = len(layout.instances)
    if count > max_instances:
        raise _fail(list_field, f"the layout has {count} boxes; at most {max_instances} are supported.",
                    f"Remove boxes (the documented limit is {max_instances} boxes per layout).")
    for index, (inst, name) in enumerate(zip(layout.instances, box_fields)):
        label = _box_label(index, inst)
        bbox_field = f"{name}.bbox"
        x1, y1, x2, y2 = _bbox_numbers(inst.bbox, bbox_field, "[x1, y1, x2, y2]")
        shown = [_json_number(v) for v in (x1, y1, x2, y2)]
        if x2 < x1 or y2 < y1:
            axis = "x2 < x1" if x2 < x1 else "y2 < y1"
            raise _fail(bbox_field, f"{label} is inverted ({axis}) in {shown}.",
                        "Swap the corners: a bbox is [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2 "
                        "(top-left, then bottom-right).")
        if x1 == x2 or y1 == y2:
            raise _fail(bbox_field, f"{label} has zero area: {shown}.",
                        "Give the box a non-zero width and height, or remove it.")
        if min(x1, y1) < 0 or x2 > layout.width or y2 > layout.height:
            raise _fail(bbox_field, f"{label} {shown} lies outside the {layout.width}x{layout.height} image.",
                        f"Clamp the box to 0..{layout.width} (x) and 0..{layout.height} (y), or change "
                        "width/height to the image size the boxes were drawn for.")
        if not inst.category.strip() and not inst.caption.strip():
            raise _fail(name, f"{label} has neither a category nor a caption.",
                        "Give the box a category (e.g. \"dog\") or a caption, or remove it.")


def _box_label(index: int, inst: Instance) -> str:
    name = inst.category.strip() or inst.caption.strip()[:40]
    return f"box {index} ({name!r})" if name else f"box {index}"


def _bbox_numbers(value: Any, name: str, form: str) -> tuple[float, float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise _fail(name, f"expected 4 numbers {form}, got {value!r}.",
                    f"Write the box as {form} in image pixels.")
    if not all(_is_number(v) for v in value):
        raise _fail(name, f"expected 4 numbers {form}, got non-numeric {list(value)!r}.",
                    f"Write every coordinate of {form} as a plain number (no quotes, no NaN).")
    return tuple(float(v) for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_size(value: Any, name: str) -> int:
    if not _is_number(value) or not float(value).is_integer() or value <= 0:
        raise _fail(name, f"the image {name} must be a positive whole number of pixels, got {value!r}.",
                    f"Set {name} to the image {name} in pixels, e.g. 1024.")
    return int(value)


def _optional_size(data: dict, key: str, name: str) -> int | None:
    return None if data.get(key) is None else _check_size(data[key], name)


def _optional_text(data: dict, key: str, name: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(name, f"expected text, got {value!r}.", f"Write {key} as a JSON string in quotes.")
    return value


def _optional_seed(data: dict, name: str) -> int | None:
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _fail(name, f"expected a whole number, got {seed!r}.", "Write seed as an integer, or remove it.")
    return seed


def _require_list(data: dict, key: str, name: str) -> list:
    if key not in data:
        raise _fail(name, f"missing \"{key}\".", f"Add \"{key}\": [...] to the layout JSON.")
    if not isinstance(data[key], list):
        raise _fail(name, f"expected a list, got {type(data[key]).__name__}.", f"Write {key} as a JSON list [...].")
    return data[key]


def _require_dict(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(name, f"expected an object {{...}}, got {value!r}.", "Write each entry as a JSON object.")
    return value


def _some_choices(choices: Sequence[str]) -> str:
    shown = ", ".join(choices[:_CHOICES_SHOWN])
    more = len(choices) - _CHOICES_SHOWN
    return shown + (f", ... ({more} more)" if more > 0 else "")


def _json_number(value: float) -> int | float:
    """Whole numbers as JSON integers, so saved layouts read ``[658, 176, ...]``."""
    return int(value) if float(value).is_integer() else value
