"""ComfyUI adapters: the only code in this pack that imports ``comfy``.

Each module holds a few related nodes and exports ``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS``.
Loading the pack also copies the example workflows' input files into ComfyUI's input folder (``example_inputs``).
"""
from . import apply, draw, editor, encode, example_inputs, layout_adapters, layout_nodes, loader

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _module in (loader, layout_nodes, editor, layout_adapters, encode, apply, draw):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
example_inputs.copy_example_inputs()
