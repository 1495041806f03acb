"""Layouts from other nodes' boxes and masks, and layouts out as core boxes, masks and JSON.

The box inputs take ComfyUI core's ``BOUNDING_BOX`` / ``BOUNDING_BOXES`` and Create Bounding Boxes' ``ARRAY`` of
elements (ComfyUI 0.29+); on older ComfyUI, where those types do not exist, the same data shapes arrive through the
API or as JSON text in ``boxes_json``. The data shapes are in ``instanceassemble_core/interchange.py``.
"""
import logging

from ..instanceassemble_core import interchange
from ..instanceassemble_core.geometry import token_aligned_size
from ..instanceassemble_core.interchange import BOX_FORMATS
from ..instanceassemble_core.layout import Layout, LayoutError
from .layout_type import LAYOUT_TYPE

FROM_BOXES = "InstanceAssembleLayoutFromBoxes"
FROM_MASKS = "InstanceAssembleLayoutFromMasks"


def _named(node: str, error: LayoutError) -> LayoutError:
    return LayoutError(f"{node}: {error}", field=error.field, fix=None)


def _size_inputs(what: str) -> dict:
    return {name: ("INT", {"default": 0, "min": 0, "max": 16384, "step": 8,
                           "tooltip": f"Image {name} in pixels of the frame the {what} are in; 0 takes it from "
                                      "image or latent."})
            for name in ("width", "height")}


def frame_size(node: str, width: int, height: int, image=None, latent=None) -> tuple[int, int]:
    """(width, height): the explicit size, else the image's [B, H, W, C], else the latent's [B, C, h, w] × 8."""
    if width and height:
        return width, height
    if image is not None:
        return int(image.shape[2]), int(image.shape[1])
    if latent is not None:
        samples = latent["samples"]
        return 8 * int(samples.shape[-1]), 8 * int(samples.shape[-2])
    raise LayoutError(f"{node}: width/height: the image size is unknown. Fix: connect the image (or latent) the "
                      "boxes belong to, or set width and height.", field="width")


class InstanceAssembleLayoutFromBoxes:
    DESCRIPTION = ("Makes a layout from boxes of other nodes: ComfyUI's bounding boxes (Create Bounding Boxes, "
                   "Bounding Box, SAM3 Detect, RT-DETR...), Create Bounding Boxes' elements, or detector JSON "
                   "(xyxy / xywh, pixels or 0–1). Each box's text: a line of captions, else its description, "
                   "else its label.")
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = (LAYOUT_TYPE, "STRING", "INT", "INT")
    RETURN_NAMES = ("layout", "prompt", "width", "height")
    OUTPUT_TOOLTIPS = ("The layout, in pixels of the boxes' frame.", "The prompt input, passed through.",
                       "The frame's width floored to a multiple of 16 (the official token grid), for the empty latent.",
                       "The frame's height floored to a multiple of 16, for the empty latent.")
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "prompt": ("STRING", {"multiline": True, "default": "", "tooltip": "The global prompt."}),
                "captions": ("STRING", {"multiline": True, "default": "",
                                        "tooltip": "One line per box, in box order; an empty line keeps the "
                                                   "box's own description or label. Empty: every box keeps its "
                                                   "own."}),
                "box_format": (list(BOX_FORMATS), {"default": "auto",
                                                   "tooltip": "How boxes_json's 4 numbers read; auto: xyxy, in "
                                                              "0–1 when all are at most 1, else pixels."}),
                "frame": ("INT", {"default": 0, "min": 0, "max": 4096,
                                  "tooltip": "Which image of a batch the boxes come from (batch lists)."}),
                **_size_inputs("boxes"),
            },
            "optional": {
                "bboxes": ("BOUNDING_BOX,BOUNDING_BOXES", {"forceInput": True,
                                                           "tooltip": "ComfyUI bounding boxes (pixels)."}),
                "elements": ("ARRAY", {"forceInput": True,
                                       "tooltip": "Create Bounding Boxes' elements (desc → text)."}),
                "boxes_json": ("STRING", {"forceInput": True,
                                          "tooltip": "Detector JSON: [{bbox, label, caption}], "
                                                     "{bboxes, labels} or core box dicts."}),
                "image": ("IMAGE", {"tooltip": "The image the boxes are in (gives the size)."}),
                "latent": ("LATENT", {"tooltip": "Or a latent of that size."}),
            },
        }

    def build(self, prompt: str, captions: str, box_format: str, frame: int, width: int, height: int,
              bboxes=None, elements=None, boxes_json=None, image=None, latent=None):
        try:
            width, height = frame_size(FROM_BOXES, width, height, image, latent)
            found = []
            if bboxes is not None:
                found += interchange.core_boxes(bboxes, frame, "bboxes")
            if elements is not None:
                found += interchange.element_boxes(elements, width, height, "elements")
            if boxes_json is not None:
                found += interchange.detector_boxes(boxes_json, width, height, box_format, frame, "boxes_json")
            layout, warnings = interchange.layout_from_boxes(found, width, height, prompt, captions, "boxes")
        except LayoutError as error:
            raise _named(FROM_BOXES, error) from None
        for warning in warnings:
            logging.warning("%s: %s", FROM_BOXES, warning)
        return (layout, prompt, token_aligned_size(width), token_aligned_size(height))


class InstanceAssembleLayoutFromMasks:
    DESCRIPTION = ("Adds one instance per mask of a MASK batch (SAM, segmentation, painting): its tokens are the "
                   "16-px cells the mask covers by at least threshold, its box features come from the mask's "
                   "bounding box. Masks stretch over the layout's image.")
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = (LAYOUT_TYPE, "STRING", "INT", "INT")
    RETURN_NAMES = ("layout", "prompt", "width", "height")
    OUTPUT_TOOLTIPS = ("The layout with the mask instances after the layout input's boxes.", "The global prompt.",
                       "Layout width floored to a multiple of 16.", "Layout height floored to a multiple of 16.")
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "masks": ("MASK", {"tooltip": "One mask per instance [N, H, W]; values >= 0.5 are inside."}),
                "captions": ("STRING", {"multiline": True, "default": "",
                                        "tooltip": "One line per mask: the instance's text."}),
                "threshold": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01,
                                        "tooltip": "Share of a 16-px cell the mask must cover for the cell to "
                                                   "belong to the instance."}),
                "prompt": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "The global prompt (empty: the layout input's)."}),
                **_size_inputs("masks"),
            },
            "optional": {
                "layout": (LAYOUT_TYPE, {"tooltip": "Boxes to keep; the masks are added after them, at its size."}),
                "image": ("IMAGE", {"tooltip": "Gives the image size (else the masks' size)."}),
                "latent": ("LATENT", {"tooltip": "Or a latent of the image size."}),
            },
        }

    def build(self, masks, captions: str, threshold: float, prompt: str, width: int, height: int, layout=None,
              image=None, latent=None):
        if masks.dim() == 2:
            masks = masks[None]
        try:
            if layout is None:
                if not (width and height) and image is None and latent is None:
                    width, height = int(masks.shape[2]), int(masks.shape[1])
                layout = Layout(*frame_size(FROM_MASKS, width, height, image, latent), prompt)
            elif prompt:
                layout = Layout(layout.width, layout.height, prompt, layout.instances, layout.seed)
            layout = interchange.add_masks(layout, masks, captions, threshold).validate()
        except LayoutError as error:
            raise _named(FROM_MASKS, error) from None
        return (layout, layout.prompt, token_aligned_size(layout.width), token_aligned_size(layout.height))


class InstanceAssembleLayoutToBoxes:
    DESCRIPTION = ("The layout's boxes as ComfyUI bounding boxes (for Draw BBoxes, SAM3 Detect, Create Bounding "
                   "Boxes and other nodes that take boxes), in the layout's pixels; the label is the category, the "
                   "description the caption.")
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = ("BOUNDING_BOX", "BOUNDING_BOXES")
    RETURN_NAMES = ("bboxes", "boxes")
    OUTPUT_TOOLTIPS = ("A batch list of one frame: [[{x, y, width, height, label, metadata}]].",
                       "The same boxes as a flat list with metadata.")
    FUNCTION = "convert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"layout": (LAYOUT_TYPE, {"tooltip": "The layout whose boxes are output."})}}

    def convert(self, layout: Layout):
        boxes = interchange.to_core_boxes(layout)
        return ([boxes], boxes)


class InstanceAssembleLayoutToMasks:
    DESCRIPTION = ("One mask per instance (its mask region, else its box) for other regional nodes, at the "
                   "layout's size or the given one.")
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("masks",)
    OUTPUT_TOOLTIPS = ("[K, height, width] masks in instance order (an empty layout gives one empty mask).",)
    FUNCTION = "convert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"layout": (LAYOUT_TYPE, {"tooltip": "The layout whose instances become masks."}),
                             **_size_inputs("masks")}}

    def convert(self, layout: Layout, width: int = 0, height: int = 0):
        width, height = (width, height) if width and height else (layout.width, layout.height)
        masks = interchange.instance_masks(layout, width, height)
        return (masks if len(masks) else masks.new_zeros(1, height, width),)


class InstanceAssembleLayoutToJSON:
    DESCRIPTION = "The layout as the pack's layout JSON (what Layout from JSON and the editor read), regions kept."
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("json",)
    OUTPUT_TOOLTIPS = ("Canonical layout JSON.",)
    FUNCTION = "convert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"layout": (LAYOUT_TYPE, {"tooltip": "The layout to write."})}}

    def convert(self, layout: Layout):
        return (layout.to_json(),)


NODE_CLASS_MAPPINGS = {
    FROM_BOXES: InstanceAssembleLayoutFromBoxes,
    FROM_MASKS: InstanceAssembleLayoutFromMasks,
    "InstanceAssembleLayoutToBoxes": InstanceAssembleLayoutToBoxes,
    "InstanceAssembleLayoutToMasks": InstanceAssembleLayoutToMasks,
    "InstanceAssembleLayoutToJSON": InstanceAssembleLayoutToJSON,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    FROM_BOXES: "InstanceAssemble Layout from Boxes",
    FROM_MASKS: "InstanceAssemble Layout from Masks",
    "InstanceAssembleLayoutToBoxes": "InstanceAssemble Layout to Boxes",
    "InstanceAssembleLayoutToMasks": "InstanceAssemble Layout to Masks",
    "InstanceAssembleLayoutToJSON": "InstanceAssemble Layout to JSON",
}
