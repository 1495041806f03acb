"""InstanceAssembleLayoutFromJSON: layout text in any supported format → LAYOUT."""
import logging

from ..instanceassemble_core.layout import MAX_SIZE, LayoutError, parse_layout
from .layout_type import LAYOUT_TYPE

FORMATS_HELP = ("Official demo JSON ({prompt, width, height, annos:[{bbox xyxy, category_name, caption}]}), a "
                "DenseLayout record or JSON Lines export, COCO instances JSON (bbox xywh) or the editor's canonical "
                "JSON.")


def layout_or_error(node: str, field: str, source, **kwargs):
    """parse_layout with errors that name the node and the field; its warning is logged under the node's name."""
    warnings = []
    try:
        layout = parse_layout(source, warnings=warnings, **kwargs)
    except LayoutError as error:
        raise layout_error(node, field, error) from None
    for warning in warnings:
        logging.warning("%s: %s: %s", node, field, warning)
    return layout


def layout_error(node: str, field: str, error: LayoutError) -> LayoutError:
    where = f"{field} ({error.field})" if error.field else field
    return LayoutError(f"{node}: {where}: {error}", field=error.field, fix=None)


class InstanceAssembleLayoutFromJSON:
    DESCRIPTION = "Reads a box layout from JSON text. " + FORMATS_HELP
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = (LAYOUT_TYPE, "STRING", "INT", "INT")
    RETURN_NAMES = ("layout", "prompt", "width", "height")
    OUTPUT_TOOLTIPS = ("The parsed, validated layout.", "The layout's global prompt (may be empty).",
                       "Image width of the layout in pixels.", "Image height of the layout in pixels.")
    FUNCTION = "parse"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"json": ("STRING", {"multiline": True, "default": "", "tooltip": FORMATS_HELP})},
            "optional": {
                "width": ("INT", {"default": 0, "min": 0, "max": MAX_SIZE, "step": 16,
                                  "tooltip": "Override the image width (0 keeps the layout's own); boxes rescale."}),
                "height": ("INT", {"default": 0, "min": 0, "max": MAX_SIZE, "step": 16,
                                   "tooltip": "Override the image height (0 keeps the layout's own); boxes rescale."}),
                "image": ("STRING", {"default": "", "tooltip": "COCO / DenseLayout lists: image id or file name."}),
            },
        }

    def parse(self, json: str, width: int = 0, height: int = 0, image: str = ""):
        layout = layout_or_error("InstanceAssembleLayoutFromJSON", "json", json, width=width or None,
                                 height=height or None, image=image.strip() or None)
        return (layout, layout.prompt, layout.width, layout.height)


NODE_CLASS_MAPPINGS = {"InstanceAssembleLayoutFromJSON": InstanceAssembleLayoutFromJSON}
NODE_DISPLAY_NAME_MAPPINGS = {"InstanceAssembleLayoutFromJSON": "InstanceAssemble Layout from JSON"}
