"""InstanceAssembleLoader: official InstanceAssemble weights from ``models/instanceassemble/``."""
import os

import folder_paths

from ..instanceassemble_core.weights import WeightsError, load_weights

FOLDER = "instanceassemble"
OFFICIAL_PAIR = ("pytorch_lora_weights.safetensors", "layout.pth")

if FOLDER not in folder_paths.folder_names_and_paths:
    folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))


def available_weights() -> list[str]:
    """Combined ``.safetensors`` files and folders holding the official pair, relative to the registered folders."""
    names = set()
    for root in folder_paths.get_folder_paths(FOLDER):
        if not os.path.isdir(root):
            continue
        for directory, _, files in os.walk(root, followlinks=True):
            relative = os.path.relpath(directory, root)
            if all(name in files for name in OFFICIAL_PAIR) and relative != ".":
                names.add(relative.replace(os.sep, "/"))
            names.update(os.path.normpath(os.path.join(relative, name)).replace(os.sep, "/")
                         for name in files if name.endswith(".safetensors") and name != OFFICIAL_PAIR[0])
    return sorted(names)


def resolve_weights(name: str) -> str:
    for root in folder_paths.get_folder_paths(FOLDER):
        path = os.path.join(root, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"InstanceAssembleLoader: weights: '{name}' was not found in {folder_paths.get_folder_paths(FOLDER)}. "
        "Put the official folder (pytorch_lora_weights.safetensors + layout.pth) or a converted .safetensors file "
        "in models/instanceassemble/ and refresh the page.")


class InstanceAssembleLoader:
    DESCRIPTION = ("Loads InstanceAssemble weights (Flux.1 or SD3-medium): a folder with the official "
                   "pytorch_lora_weights.safetensors + layout.pth, or one converted .safetensors file, "
                   "from models/instanceassemble/.")
    CATEGORY = "InstanceAssemble"
    RETURN_TYPES = ("INSTANCEASSEMBLE",)
    RETURN_NAMES = ("instanceassemble",)
    OUTPUT_TOOLTIPS = ("The layout encoder, layout LoRA and per-block layout projections, for InstanceAssembleApply.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"weights": (available_weights(), {
            "tooltip": "A folder in models/instanceassemble/ holding the official pair, or a combined .safetensors."})}}

    def load(self, weights: str):
        try:
            return (load_weights(resolve_weights(weights)),)
        except WeightsError as error:
            raise WeightsError(f"InstanceAssembleLoader: weights: {error}") from None


NODE_CLASS_MAPPINGS = {"InstanceAssembleLoader": InstanceAssembleLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"InstanceAssembleLoader": "InstanceAssemble Loader"}
