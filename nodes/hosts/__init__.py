"""How the instance branch hooks into each model family's transformer blocks.

A host maps the official (diffusers-named) LoRA and ``layout_forward`` weights onto ComfyUI's own modules and
returns one block replacement per layout block. The math lives in ``instanceassemble_core.assemble``.
"""
from .base import FamilyError, Host
from .flux import FluxHost
from .sd3 import SD3Host

HOSTS = (FluxHost, SD3Host)


def host_for(diffusion_model) -> Host:
    """The host for a ComfyUI diffusion model, or a FamilyError naming what was found and what is supported."""
    for host_class in HOSTS:
        if host_class.matches(diffusion_model):
            return host_class(diffusion_model)
    raise FamilyError(
        f"the model is a {type(diffusion_model).__name__}; InstanceAssemble supports Flux.1 (dev, schnell) and "
        "SD3-medium. Load one of those with UNETLoader / CheckpointLoaderSimple.")


__all__ = ["FamilyError", "Host", "host_for"]
