"""InstanceAssembleLayoutEditor: boxes drawn in the node's canvas widget → LAYOUT and the global prompt.

The widget (web/editor_extension.js) stores the layout as canonical layout JSON in the ``layout`` STRING input, so the
workflow saves it in ``widgets_values`` and the API prompt carries it like any other string. Without the frontend
(API use) ``layout`` takes any format ``parse_layout`` reads.
"""
from ..instanceassemble_core.layout import LayoutError, parse_layout
from . import server_routes
from .layout_nodes import layout_or_error

NODE_NAME = "InstanceAssembleLayoutEditor"
WIDGET_TYPE = "INSTANCEASSEMBLE_LAYOUT_CANVAS"
EMPTY_LAYOUT = '{"format":"instanceassemble.layout","version":1,"width":1024,"height":1024,"prompt":"","boxes":[]}'

server_routes.register()


def _size_input(what: str):
    return ("INT", {"default": 1024, "min": 16, "max": 8192, "step": 16,
                    "tooltip": f"Image {what} in pixels. Changing it rescales the boxes proportionally."})


class InstanceAssembleLayoutEditor:
    DESCRIPTION = ("Draw the layout: drag on the canvas to add a box, give each box a category and a caption, and "
                   "type the global prompt. Boxes are stored in image pixels; the ? button lists the shortcuts.")
    CATEGORY = "InstanceAssemble/layout"
    RETURN_TYPES = ("LAYOUT", "STRING")
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
    def VALIDATE_INPUTS(cls, layout=None):
        # Checked before the prompt runs, so the editor node is flagged in the UI. A linked `layout` is
        # checked when the node runs.
        if layout is None:
            return True
        try:
            parse_layout(layout)
        except LayoutError as error:
            return f"{NODE_NAME}: layout ({error.field}): {error}"
        return True

    def build(self, width: int, height: int, layout: str):
        parsed = layout_or_error(NODE_NAME, "layout", layout, width=width, height=height)
        return (parsed, parsed.prompt)


NODE_CLASS_MAPPINGS = {NODE_NAME: InstanceAssembleLayoutEditor}
NODE_DISPLAY_NAME_MAPPINGS = {NODE_NAME: "InstanceAssemble Layout Editor"}
