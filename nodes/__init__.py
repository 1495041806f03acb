"""ComfyUI adapters: the only code in this pack that imports ``comfy``.

Each module holds a few related nodes and exports ``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS``.
"""
from . import apply, draw, editor, encode, layout_adapters, layout_nodes, loader

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _module in (loader, layout_nodes, editor, layout_adapters, encode, apply, draw):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
