"""InstanceAssembleApply: MODEL + weights + encoded layout → a patched MODEL clone."""
import logging

from ..instanceassemble_core.branch import InstanceBranch
from ..instanceassemble_core.families import FAMILIES
from ..instanceassemble_core.schedule import GroundingSchedule
from ..instanceassemble_core.weights import InstanceAssembleWeights
from . import comfy_compat
from .encode import EncodedLayout
from .hosts import FamilyError, Host, host_for
from .patch import InstanceAssemblePatch

NODE = "InstanceAssembleApply"


def check_compatible(host: Host, weights: InstanceAssembleWeights, layout: EncodedLayout) -> None:
    """Raise a FamilyError naming the input at fault, what was found, and the fix."""
    model_family = host.family.display_name
    if weights.family != host.family.name:
        raise FamilyError(
            f"{NODE}: instanceassemble: these are {FAMILIES[weights.family].display_name} InstanceAssemble weights "
            f"({weights.source}) but the model is {model_family}. Load the {model_family} weights with "
            "InstanceAssembleLoader.")
    if layout.family != host.family.name:
        raise FamilyError(
            f"{NODE}: layout: the layout was encoded with a {FAMILIES[layout.family].display_name} CLIP but the "
            f"model is {model_family}. Connect the CLIP that belongs to the {model_family} model to "
            "InstanceAssembleLayoutEncode.")
    if weights.hidden_dim != host.hidden_dim:
        raise FamilyError(
            f"{NODE}: instanceassemble: the weights are for a transformer of width {weights.hidden_dim}, the model "
            f"has width {host.hidden_dim}. Use the weights released for this model.")
    if layout.pooled.numel() and layout.pooled.shape[-1] != weights.pooled_dim:
        raise FamilyError(
            f"{NODE}: layout: the instance text embeddings have {layout.pooled.shape[-1]} dims, the weights expect "
            f"{weights.pooled_dim}. Encode the layout with the CLIP of this model.")
    if max(weights.double_layout_blocks, default=-1) >= host.num_double_blocks or \
            max(weights.single_layout_blocks, default=-1) >= host.num_single_blocks:
        raise FamilyError(
            f"{NODE}: instanceassemble: the weights patch blocks {weights.double_layout_blocks} / single "
            f"{weights.single_layout_blocks}, but the model has {host.num_double_blocks} / {host.num_single_blocks}.")


class InstanceAssembleApply:
    DESCRIPTION = ("Patches a Flux.1 or SD3-medium model so that each box of the layout gets its object. The "
                   "layout LoRA runs only inside the instance branch and is never merged, so style LoRAs can be "
                   "chained before or after this node.")
    CATEGORY = "InstanceAssemble"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The patched model (a clone; the input model is unchanged).",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "Flux.1 dev / schnell or SD3-medium."}),
            "instanceassemble": ("INSTANCEASSEMBLE", {"tooltip": "From InstanceAssembleLoader, same family."}),
            "layout": ("INSTANCEASSEMBLE_LAYOUT", {"tooltip": "From InstanceAssembleLayoutEncode."}),
            "layout_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05,
                                       "tooltip": "Strength of the box guidance. 0 = stock model."}),
            "grounding_ratio": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.01,
                                          "tooltip": "Fraction of the sampler's steps that follow the boxes "
                                                     "(first int(ratio × steps) steps; 0.3 → 8 of 28)."}),
        }}

    def apply(self, model, instanceassemble: InstanceAssembleWeights, layout: EncodedLayout,
              layout_scale: float, grounding_ratio: float):
        check_settings(layout_scale=layout_scale, grounding_ratio=grounding_ratio)
        host = host_for_node(model)
        check_compatible(host, instanceassemble, layout)
        schedule = GroundingSchedule(grounding_ratio)
        if layout_scale == 0 or schedule.never_grounds:
            return (model,)
        if not layout.layout.instances:
            logging.warning("%s: the layout has no boxes; only the branch's feed-forward pass will run.", NODE)
        branch = InstanceBranch(instanceassemble).to(comfy_compat.inference_dtype(model))
        return (InstanceAssemblePatch(host, branch, layout, layout_scale, schedule).patch(model),)


def check_settings(**values: float) -> None:
    """Refuse a setting outside its input's range; NaN passes ComfyUI's own min/max check, not this one."""
    for name, value in values.items():
        spec = InstanceAssembleApply.INPUT_TYPES()["required"][name][1]
        if not spec["min"] <= value <= spec["max"]:
            raise ValueError(f"{NODE}: {name}: {value} is not a number from {spec['min']} to {spec['max']}. "
                             f"Set {name} in that range (default {spec['default']}).")


def host_for_node(model) -> Host:
    try:
        comfy_compat.refuse_flux2(model.get_model_object("diffusion_model"))
        return host_for(model.get_model_object("diffusion_model"))
    except FamilyError as error:
        raise FamilyError(f"{NODE}: model: {error}") from None


NODE_CLASS_MAPPINGS = {"InstanceAssembleApply": InstanceAssembleApply}
NODE_DISPLAY_NAME_MAPPINGS = {"InstanceAssembleApply": "InstanceAssemble Apply"}
