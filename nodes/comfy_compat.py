"""The few places where the pack reads ComfyUI beyond its stable surfaces, one function each, so that a change between
ComfyUI versions (0.3.64 and the 2026 releases, 0.29) is absorbed here. Each is tested on every supported version.
"""
from contextlib import contextmanager, nullcontext
import torch

import comfy.model_management

from .hosts import FamilyError

APPLY = "InstanceAssembleApply"
COMPUTE_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def refuse_flux2(diffusion_model) -> None:
    """Flux.2 and Flux.2 Klein share ComfyUI's ``Flux`` class with Flux.1 (2026: ``params.image_model == "flux2"``,
    global modulation, a tuple ``vec``); the official weights are for Flux.1 only, so refuse them by name."""
    params = getattr(diffusion_model, "params", None)
    image_model = getattr(params, "image_model", None) or getattr(diffusion_model, "image_model", None)
    if image_model == "flux2" or getattr(params, "global_modulation", False):
        raise FamilyError(
            f"{APPLY}: model: the model is a Flux.2 / Flux.2 Klein transformer (image_model 'flux2', width "
            f"{params.hidden_size}); the InstanceAssemble weights are for Flux.1 (dev, schnell) only. Load a Flux.1 "
            "model (UNETLoader: flux1-dev / flux1-schnell), or sample this model without InstanceAssembleApply.")


def refuse_reference_method(model_kwargs: dict) -> None:
    """Reference latents (Kontext-style ``ref_latents``) are appended after the generated image's tokens, which the
    branch never touches. The ``index_timestep_zero`` method (2026, "Edit Model Reference Method") also doubles the
    timestep rows, which only Flux.2's global modulation consumes; on Flux.1 it cannot run, so say so first."""
    if model_kwargs.get("ref_latents_method") == "index_timestep_zero":
        raise ValueError(
            f"{APPLY}: the conditioning's reference latents use the 'index_timestep_zero' method (Edit Model "
            "Reference Method), which is made for Flux.2 models; Flux.1 cannot sample with it. Set the method to "
            "'offset' or 'index', or remove the Edit Model Reference Method node.")


@contextmanager
def clip_execution(clip):
    """Run a CLIP's text encoders as ``CLIP.encode_from_tokens`` runs them: weights loaded on the patcher's load
    device, the encoders told that device (``execution_device``), and (2026) inside ComfyUI's device context, so
    encoding never runs wherever offloaded or dynamically loaded weights happen to sit."""
    clip.load_model()
    device = clip.patcher.load_device
    clip.cond_stage_model.set_clip_options({"execution_device": device})
    device_context = getattr(comfy.model_management, "cuda_device_context", None)
    try:
        with device_context(device) if device_context is not None else nullcontext():
            yield device
    finally:
        clip.cond_stage_model.reset_clip_options()


def inference_dtype(model_patcher) -> torch.dtype:
    """The dtype the branch computes in: ComfyUI's own inference dtype of the model (2026: ``get_dtype_inference``;
    0.3.x: the manual-cast dtype, else the weights' dtype), bf16 for any storage that is neither a 16- nor a 32-bit
    float (fp8, mxfp8, nvfp4, GGUF-style quantized ops)."""
    model = model_patcher.model
    get_dtype_inference = getattr(model, "get_dtype_inference", None)
    dtype = get_dtype_inference() if get_dtype_inference is not None else model.manual_cast_dtype or model.get_dtype()
    return dtype if dtype in COMPUTE_DTYPES else torch.bfloat16


class DeviceCopyError(ValueError):
    """A patched model was to be copied onto another device (2026 multi-GPU nodes)."""


def _refuse_device_copy(*_args, **_kwargs):
    raise DeviceCopyError(
        f"{APPLY}: a model patched by InstanceAssemble cannot be copied to another device (MultiGPU CFG Split, or "
        "Select Model Device placed after InstanceAssembleApply): its instance branch reads the blocks of the model it "
        "was applied to. Remove MultiGPU CFG Split from this model's path, and put Select Model Device before "
        "InstanceAssembleApply.")


def refuse_device_copies(branch_patcher) -> None:
    """2026 multi-GPU nodes rebuild every additional model of a patched model from its ``cached_patcher_init``
    factory (``ModelPatcher.deepclone_multigpu``); the branch's factory refuses at once, with the way out, instead of
    ComfyUI's message about loaders or a copy whose block patches run the primary model's modules."""
    branch_patcher.cached_patcher_init = (_refuse_device_copy, ())
