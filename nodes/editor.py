"""InstanceAssembleLayoutEditor: boxes drawn in the node's canvas widget → LAYOUT and the global prompt.

The widget (web/editor_extension.js) stores the layout as canonical layout JSON in the ``layout`` STRING input, so the
workflow saves it in ``widgets_values`` and the API prompt carries it like any other string. Without the frontend
(API use) ``layout`` takes any format ``parse_layout`` reads.
"""
from ..instanceassemble_core.layout import LayoutError, parse_layout
from . import server_routes
from .layout_nodes import layout_error, layout_or_error
from .layout_type import LAYOUT_TYPE

NODE_NAME = "InstanceAssembleLayoutEditor"
WIDGET_TYPE = "INSTANCEASSEMBLE_LAYOUT_CANVAS"
EMPTY_LAYOUT = '{"format":"instanceassemble.layout","version":1,"width":1024,"height":1024,"prompt":"","boxes":[]}'
SIZE_MIN, SIZE_MAX = 16, 8192

server_routes.register()


def _size_input(what: str):
    return ("INT", {"default": 1024, "min": SIZE_MIN, "max": SIZE_MAX, "step": 16,
                    "tooltip": f"Image {what} in pixels. Changing it rescales the boxes proportionally."})


class InstanceAssembleLayoutEditor:
    DESCRIPTION = ("Draw the layout: drag on the canvas to add a box, give each box a category and a caption, and "
                   "type the global prompt. Boxes are stored in image pixels; the ? button lists the shortcuts.")
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = (LAYOUT_TYPE, "STRING")
    RETURN_NAMES = ("layout", "prompt")
    OUTPUT_TOOLTIPS = ("The drawn layout, sized width × height.", "The global prompt typed in the editor.")
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "width": _size_input("width"),
                "height": _size_input("height"),
                "layout": ("STRING", {
                    "default": EMPTY_LAYOUT, "widgetType": WIDGET_TYPE,
                    "tooltip": "The layout as JSON (the editor writes canonical layout JSON; other formats are "
                               "accepted when the input is set through the API or a link)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, layout=None):
        # Checked before the prompt runs, so the editor node is flagged in the UI. Linked inputs arrive as None
        # and are checked when the node runs. Declaring width/height here turns off ComfyUI's own min/max check of
        # them, so it is done here.
        for name, value in (("width", width), ("height", height)):
            if value is not None and not SIZE_MIN <= value <= SIZE_MAX:
                return (f"{NODE_NAME}: {name}: {value} is outside {SIZE_MIN}..{SIZE_MAX}. "
                        f"Fix: Set {name} in that range.")
        if layout is None:
            return True
        try:
            parse_layout(layout, width=width, height=height)
        except LayoutError as error:
            if error.field in ("width", "height") and None in (width, height):
                return True  # a layout without a size takes the linked width/height at run time
            return str(layout_error(NODE_NAME, "layout", error))
        return True

    def build(self, width: int, height: int, layout: str):
        parsed = layout_or_error(NODE_NAME, "layout", layout, width=width, height=height)
        return (parsed, parsed.prompt)


NODE_CLASS_MAPPINGS = {NODE_NAME: InstanceAssembleLayoutEditor}
NODE_DISPLAY_NAME_MAPPINGS = {NODE_NAME: "InstanceAssemble Layout Editor"}
