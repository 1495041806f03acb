"""Layouts: an image size, a global prompt and captioned boxes; parsers for every supported JSON form.

Boxes are always xyxy in pixels of the target image (docs/reference-semantics.md §1). ``parse_layout`` reads:

- our canonical JSON (what the box-editor widget saves, ``Layout.to_dict``);
- the official demo JSON and DenseLayout records (``annos`` with ``category_name``/``caption``), also a list of
  DenseLayout records;
- COCO instances JSON (``bbox`` is xywh there and is converted);
- JSON Lines (one DenseLayout record per line, as the ``datasets`` library's ``to_json`` writes them).

Every problem is a ``LayoutError`` naming the JSON field and saying how to fix it, whatever the input (``parse_layout``
is the one error boundary of every input path). Input the official code accepts but treats specially (boxes a little
past the image edge, zero-area boxes, boxes without text, more boxes than its scripts keep) is used as the official
code uses it, and summed up in one warning per layout.
"""
import json
import math
import reprlib
import sys
from dataclasses import dataclass, replace
from typing import Any, Sequence

from .regions import Region

MAX_INSTANCES = 200
OFFICIAL_MAX_INSTANCES = 50  # the official demo and inference scripts' max_objs
OFFICIAL_BENCHMARK_MAX_INSTANCES = 100  # its DenseLayout benchmark
MIN_SIZE, MAX_SIZE = 16, 16384  # the bounds of ComfyUI's latent size inputs
EDGE_TOLERANCE = 8.0  # px a box may reach past the image edge: half a 16-px token, where the official token rule
#                       still gives it exactly the tokens of its part inside the image
MAX_SEED = 0xFFFFFFFFFFFFFFFF  # the KSampler seed input's maximum
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
        """The text the instance encoder sees: ``category`` or ``category, caption`` (§1, comma kept)."""
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
        """The same layout for a ``width`` × ``height`` image: each axis of every box scales proportionally; a mask
        instance's box is its mask's bounding box at the new size (the editor's rule too)."""
        width = _check_size(width, "width")
        height = _check_size(height, "height")

        def scaled(inst: Instance) -> Instance:
            x1, y1, x2, y2 = inst.bbox
            bbox = (x1 * width / self.width, y1 * height / self.height,
                    x2 * width / self.width, y2 * height / self.height)
            if inst.region is not None:
                bbox = inst.region.bbox(width, height) or bbox
            return replace(inst, bbox=bbox)

        return Layout(width, height, self.prompt, tuple(map(scaled, self.instances)), self.seed)

    def validate(self, max_instances: int = MAX_INSTANCES, warnings: list[str] | None = None) -> "Layout":
        """Return ``self`` when every box is usable, else raise ``LayoutError`` naming ``boxes[i]``; the summary
        warning, if any, is appended to ``warnings``."""
        _check_size(self.width, "width")
        _check_size(self.height, "height")
        _note(warnings, _validate_boxes(self, max_instances, [f"boxes[{i}]" for i in range(len(self.instances))],
                                        "boxes"))
        return self


def parse_layout(source: str | dict | list, *, width: int | None = None, height: int | None = None,
                 image: str | int | None = None, validate: bool = True,
                 warnings: list[str] | None = None) -> Layout:
    """Read a layout from a JSON string or an already parsed JSON value, detecting its format.

    ``width``/``height`` override the size: a source with its own size is ``resized`` to them, a source without
    one needs them. ``image`` picks one image (id, or COCO ``file_name``; a DenseLayout record without ``id`` goes
    by its list index) from a DenseLayout list or a COCO file; single-layout sources ignore it. With ``validate``
    the boxes are checked against the source's own size before any resize, and the one warning summing up what is
    used as the official code uses it (see ``_validate_boxes``) is appended to ``warnings``.

    Any failure is a ``LayoutError``: this is the error boundary of every input path (nodes, route, runner).
    """
    try:
        return _parse(source, width, height, image, validate, warnings)
    except LayoutError:
        raise
    except RecursionError:
        raise _too_deep("json") from None
    except Exception as error:  # a case the checks below missed: still the user's input, never a raw error
        raise _fail("json", f"the layout could not be read ({type(error).__name__}: {_shown(str(error))}).",
                    "Check the layout against the formats in the node's description.") from error


def load_json_text(text: str, field: str = "json") -> Any:
    """``json.loads`` with every failure (syntax, nesting, number length) as a ``LayoutError`` naming ``field``.

    Text of several lines that is not one JSON value but one JSON object per line (JSON Lines) gives the list of
    those objects.
    """
    try:
        return _loads(text, field)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":
            records = _json_lines(text, field)
            if records is not None:
                return records
        raise _fail(field, f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.",
                    f"Correct the JSON near line {err.lineno}, column {err.colno} "
                    "(usually a missing comma, quote or bracket).") from None


def _loads(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _too_deep(field) from None
    except ValueError:  # Python's limit on the digits of an integer
        raise _fail(field, f"a number in the JSON has more than {sys.get_int_max_str_digits()} digits.",
                    "Write every number with a sensible number of digits (pixels, ids).") from None


def _too_deep(field: str) -> LayoutError:
    return _fail(field, "the JSON is nested too deeply to read.",
                 "A layout is an object holding a list of boxes; remove the extra levels of brackets.")


def _json_lines(text: str, field: str) -> list | None:
    """The objects of JSON Lines text, or None when its first line is not a JSON object by itself."""
    lines = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    records = []
    for number, line in lines:
        try:
            record = _loads(line, field)
        except json.JSONDecodeError as err:
            if not records:
                return None
            raise _fail(field, f"line {number} of the JSON Lines text is not valid JSON: {err.msg} at column "
                               f"{err.colno}.", f"Correct line {number}: each line holds one JSON object.") from None
        if not isinstance(record, dict):
            if not records:
                return None
            raise _fail(field, f"line {number} of the JSON Lines text is not a JSON object.",
                        "Put one layout record {...} on each line.")
        records.append(record)
    return records


def _parse(source, width, height, image, validate: bool, warnings: list[str] | None) -> Layout:
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
        _note(warnings, _validate_boxes(layout, MAX_INSTANCES, draft.box_fields, draft.list_field))
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
    return load_json_text(source)


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
    found = (f"top-level keys: {_some_choices([_clip(key) for key in sorted(map(str, data))]) or 'none'}"
             if isinstance(data, dict)
             else f"a JSON {type(data).__name__}")
    raise _fail("json", f"unknown layout format ({found}).",
                f"Use one of: our layout JSON with \"format\": \"{LAYOUT_FORMAT}\" and \"boxes\"; "
                "the official demo / DenseLayout JSON with \"annos\"; "
                "or COCO instances JSON with \"images\", \"annotations\" and \"categories\".")


def _read_canonical(data: dict) -> _Draft:
    if data["format"] != LAYOUT_FORMAT:
        raise _fail("format", f"unknown format {_shown(data['format'])}.", f"Set \"format\" to \"{LAYOUT_FORMAT}\".")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail("version", f"expected a positive integer, got {_shown(version)}.",
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
    ids = [_id_text(record.get("id", i)) for i, record in enumerate(records)]
    if image is None:
        if len(records) == 1:
            return _read_record(records[0], "[0].")
        raise _fail("image", f"the list holds {len(records)} layouts; choose one by id "
                             f"({_some_choices(ids)}).", "Set image to one of those ids.")
    if _id_text(image) not in ids:
        raise _fail("image", f"no layout with id {_shown(image)} (available: {_some_choices(ids)}).",
                    "Set image to one of the listed ids.")
    index = ids.index(_id_text(image))
    return _read_record(records[index], f"[{index}].")


def _read_coco(data: dict, image: str | int | None) -> _Draft:
    images = _require_list(data, "images", "images")
    for i, entry in enumerate(images):
        _require_dict(entry, f"images[{i}]")
    choices = [f"{_id_text(entry.get('id'))} ({_id_text(entry.get('file_name', '?'))})" for entry in images]
    if image is None:
        if len(images) != 1:
            raise _fail("image", f"the COCO file holds {len(images)} images; choose one by id or file_name "
                                 f"({_some_choices(choices)}).", "Set image to one of those ids or file names.")
        index = 0
    else:
        matches = [i for i, entry in enumerate(images)
                   if _id_text(entry.get("id")) == _id_text(image) or entry.get("file_name") == image]
        if not matches:
            raise _fail("image", f"no COCO image with id or file_name {_shown(image)} "
                                 f"(available: {_some_choices(choices)}).",
                        "Set image to one of the listed ids or file names.")
        index = matches[0]
    entry = images[index]

    names = {}
    for i, category in enumerate(_require_list(data, "categories", "categories")):
        category = _require_dict(category, f"categories[{i}]")
        names[_scalar_id(category.get("id"), f"categories[{i}].id")] = _optional_text(
            category, "name", f"categories[{i}].name")

    instances, box_fields = [], []
    for j, annotation in enumerate(_require_list(data, "annotations", "annotations")):
        name = f"annotations[{j}]"
        annotation = _require_dict(annotation, name)
        if annotation.get("image_id") != entry.get("id"):
            continue
        if _scalar_id(annotation.get("category_id"), f"{name}.category_id") not in names:
            raise _fail(f"{name}.category_id", f"category {_shown(annotation.get('category_id'))} is not in "
                                               "categories.",
                        "Add it to \"categories\" or correct category_id.")
        if "bbox" not in annotation:
            raise _fail(f"{name}.bbox", "missing bbox.", "Add \"bbox\": [x, y, width, height] in pixels.")
        x, y, w, h = _bbox_numbers(annotation["bbox"], f"{name}.bbox", "[x, y, width, height]")
        if w < 0 or h < 0:
            raise _fail(f"{name}.bbox", f"COCO boxes are [x, y, width, height]; width and height must not be "
                                        f"negative, got {_shown(annotation['bbox'])}.",
                        "Use the absolute width and height.")
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
    if not all(_as_number(v) is not None for v in numbers) or not all(float(v).is_integer() for v in numbers[:-1]):
        raise _fail(name, "size and counts must be whole numbers and threshold a number.", fix)
    if not all(1 <= v <= MAX_SIZE for v in value["size"]):
        raise _fail(name, f"the mask size {_shown(value['size'])} is outside 1–{MAX_SIZE} px a side.", fix)
    try:
        return Region(int(value["size"][0]), int(value["size"][1]), tuple(int(c) for c in value["counts"]),
                      float(value.get("threshold", 0.5)))
    except ValueError as error:
        raise _fail(name, str(error), fix) from None


def _validate_boxes(layout: Layout, max_instances: int, box_fields: Sequence[str], list_field: str) -> str | None:
    """Check the box count and each box against the layout's own size; ``box_fields[i]`` names box i.

    Refused: more than ``max_instances`` boxes, inverted boxes, boxes past the image edge by more than
    ``EDGE_TOLERANCE``. Used as given, as the official code uses them, and summed up in the returned warning:
    boxes a little past the edge (the official code does not clip; its token rule keeps the part inside), zero-area
    boxes (its token rule widens them to one token), boxes with neither category nor caption (their text is ""),
    and layouts with more boxes than the official scripts keep.
    """
    count = len(layout.instances)
    if count > max_instances:
        raise _fail(list_field, f"the layout has {count} boxes; at most {max_instances} are supported.",
                    f"Remove boxes (the documented limit is {max_instances} boxes per layout).")
    past_edge, zero_area, textless = [], [], []
    farthest = 0.0
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
        overhang = max(-x1, -y1, x2 - layout.width, y2 - layout.height)
        if overhang > EDGE_TOLERANCE:
            raise _fail(bbox_field, f"{label} {shown} lies outside the {layout.width}x{layout.height} image.",
                        f"Clamp the box to 0..{layout.width} (x) and 0..{layout.height} (y), or change "
                        "width/height to the image size the boxes were drawn for.")
        if overhang > 0:
            past_edge.append(name)
            farthest = max(farthest, overhang)
        if x1 == x2 or y1 == y2:
            zero_area.append(name)
        if not inst.category.strip() and not inst.caption.strip():
            textless.append(name)
    notes = []
    if past_edge:
        notes.append(f"{_subject(past_edge, 'reaches', 'reach')} up to {farthest:.3g} px past the image edge "
                     "(used as given, as the official code does: only the part inside the image gets tokens)")
    if zero_area:
        notes.append(f"{_subject(zero_area, 'has', 'have')} zero area (used as given: the official token rule "
                     "widens such a box to one token row or column; one at [0, 0, 0, 0] gets none)")
    if textless:
        notes.append(f"{_subject(textless, 'has', 'have')} neither a category nor a caption (encoded as an empty "
                     "text, as the official code does)")
    if count > OFFICIAL_MAX_INSTANCES:
        notes.append(f"the layout has {count} boxes: the official demo and inference scripts keep the first "
                     f"{OFFICIAL_MAX_INSTANCES} (its DenseLayout benchmark the first "
                     f"{OFFICIAL_BENCHMARK_MAX_INSTANCES}) and drop the rest; this pack uses all {count}")
    return "; ".join(notes) + "." if notes else None


def _subject(fields: Sequence[str], singular: str, plural: str) -> str:
    return f"{_some_choices(fields)} {singular if len(fields) == 1 else plural}"


def _note(warnings: list[str] | None, warning: str | None) -> None:
    if warnings is not None and warning:
        warnings.append(warning)


def _box_label(index: int, inst: Instance) -> str:
    name = inst.category.strip() or inst.caption.strip()[:40]
    return f"box {index} ({name!r})" if name else f"box {index}"


def _bbox_numbers(value: Any, name: str, form: str) -> tuple[float, float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise _fail(name, f"expected 4 numbers {form}, got {_shown(value)}.",
                    f"Write the box as {form} in image pixels.")
    numbers = [_as_number(v) for v in value]
    if None in numbers:
        raise _fail(name, f"expected 4 numbers {form}, got non-numeric or out-of-range {_shown(list(value))}.",
                    f"Write every coordinate of {form} as a plain number of pixels (no quotes, no NaN).")
    return tuple(numbers)


def _as_number(value: Any) -> float | None:
    """``value`` as a finite float; None for non-numbers, NaN/infinity and integers beyond the float range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _check_size(value: Any, name: str) -> int:
    number = _as_number(value)
    if number is None or not number.is_integer() or not MIN_SIZE <= number <= MAX_SIZE:
        side = "height" if name.endswith("height") else "width"
        raise _fail(name, f"the image {side} must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, "
                          f"got {_shown(value)}.", f"Set {name} to the image {side} in pixels, e.g. 1024.")
    return int(number)


def _optional_size(data: dict, key: str, name: str) -> int | None:
    return None if data.get(key) is None else _check_size(data[key], name)


def _optional_text(data: dict, key: str, name: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(name, f"expected text, got {_shown(value)}.", f"Write {key} as a JSON string in quotes.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone UTF-16 surrogate such as "\\ud800": no text encoder can read it
        raise _fail(name, f"character {error.start} is an unpaired surrogate (\\u{ord(value[error.start]):04x}), "
                          "which is not text.",
                    f"Remove that character from {key}, or save the file from an editor that writes valid "
                    "UTF-8.") from None
    return value


def _optional_seed(data: dict, name: str) -> int | None:
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise _fail(name, f"expected a whole number from 0 to {MAX_SEED}, got {_shown(seed)}.",
                    "Write seed as a non-negative integer, or remove it.")
    return seed


def _require_list(data: dict, key: str, name: str) -> list:
    if key not in data:
        raise _fail(name, f"missing \"{key}\".", f"Add \"{key}\": [...] to the layout JSON.")
    if not isinstance(data[key], list):
        raise _fail(name, f"expected a list, got {type(data[key]).__name__}.", f"Write {key} as a JSON list [...].")
    return data[key]


def _require_dict(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(name, f"expected an object {{...}}, got {_shown(value)}.", "Write each entry as a JSON object.")
    return value


def _scalar_id(value: Any, name: str) -> Any:
    if isinstance(value, (list, dict)):
        raise _fail(name, f"expected a number or text as the id, got {_shown(value)}.",
                    "Write ids as plain numbers (COCO uses integers).")
    return value


def _id_text(value: Any) -> str:
    """An image / record id as the text it is matched by: text as it is, anything else as shown in messages."""
    return value if isinstance(value, str) else _shown(value)


class _ShortRepr(reprlib.Repr):
    """``reprlib`` that also never expands a huge integer (``repr`` refuses above 4300 digits)."""

    def repr_int(self, x, level):
        if x.bit_length() > 128:
            return f"<a number of {round(x.bit_length() * math.log10(2))} digits>"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def _shown(value: Any) -> str:
    """A short rendering of any JSON value for a message: bounded length and depth, safe for any input."""
    return _SHORT.repr(value)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _some_choices(choices: Sequence[str]) -> str:
    shown = ", ".join(choices[:_CHOICES_SHOWN])
    more = len(choices) - _CHOICES_SHOWN
    return shown + (f", ... ({more} more)" if more > 0 else "")


def _json_number(value: float) -> int | float:
    """Whole numbers as JSON integers, so saved layouts read ``[658, 176, ...]``."""
    return int(value) if float(value).is_integer() else value
