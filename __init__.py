"""ComfyUI-InstanceAssemble: layout-to-image control (InstanceAssemble, NeurIPS 2025) for Flux.1 and SD3.

ComfyUI imports this folder as a package; everything heavy is imported lazily by the nodes.
"""
if __package__:  # pytest imports this file bare when the folder's name is not a Python name (ComfyUI-InstanceAssemble)
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    WEB_DIRECTORY = "./web"

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
