"""Patching a ComfyUI MODEL with the instance branch.

Three wrappers, all per-call state travelling in the sampler call's own options under the patch's ``OptionKeys``
(the contract is in ``call_context``):
- SAMPLER_SAMPLE starts the schedule's StepTracker for the sampler call and listens to its progress callback;
- PREDICT_NOISE asks the tracker, once per model evaluation, whether the evaluation is grounded;
- APPLY_MODEL builds the CallContext (instance indices, layout stream from the layout encoder) for a grounded
  evaluation and hands it to the block replacements; an ungrounded one runs the stock path untouched.
"""
import logging
from typing import Optional

import torch
from torch import Tensor

import comfy.model_patcher
import comfy.patcher_extension

from ..instanceassemble_core.assemble import InstanceBatch, build_instance_batch
from ..instanceassemble_core.branch import InstanceBranch
from ..instanceassemble_core.geometry import layout_token_positions
from ..instanceassemble_core.regions import instance_token_indices
from ..instanceassemble_core.schedule import GroundingSchedule
from . import comfy_compat
from .call_context import CallContext, LayoutStream, OptionKeys
from .encode import EncodedLayout
from .hosts import Host

WRAPPER_KEY = "instanceassemble"


class LatentSizeError(ValueError):
    pass


def token_grid(latent: Tensor, patch_size: int) -> tuple[int, int]:
    """(rows, cols) of the transformer token grid for a latent [B, C, h, w] (8 pixels per latent cell).

    The reference's grid is H//16 × W//16; ComfyUI pads odd latent sides, which would shift every box by a
    fraction of a token, so such sizes are refused.
    """
    height, width = latent.shape[-2:]
    if height % patch_size or width % patch_size:
        step = 8 * patch_size
        raise LatentSizeError(
            f"InstanceAssembleApply: the image is {8 * width}×{8 * height} px, but InstanceAssemble places boxes on "
            f"{step}-px tokens, so width and height must be multiples of {step}. Set the latent size (e.g. "
            f"EmptyLatentImage / EmptySD3LatentImage width and height) to multiples of {step}, e.g. "
            f"{step * round(8 * width / step)}×{step * round(8 * height / step)}.")
    return height // patch_size, width // patch_size


def layout_rows(num_rows: int, cond_or_uncond: Optional[list[int]]) -> list[int]:
    """Batch rows that get the layout: the positive (cond) rows of ComfyUI's CFG batch, in whatever order and
    chunking ComfyUI chose; every row when the call carries no CFG information."""
    if not cond_or_uncond:
        return list(range(num_rows))
    per_chunk = num_rows // len(cond_or_uncond)
    return [chunk * per_chunk + i for chunk, kind in enumerate(cond_or_uncond) if kind == 0 for i in range(per_chunk)]


class InstanceAssemblePatch:
    """The wrappers of one InstanceAssembleApply node."""

    def __init__(self, host: Host, branch: InstanceBranch, layout: EncodedLayout, layout_scale: float,
                 schedule: GroundingSchedule):
        self.host = host
        self.branch = branch
        self.layout = layout
        self.layout_scale = layout_scale
        self.schedule = schedule
        self.keys = OptionKeys.new()
        self._batches: dict[tuple, InstanceBatch] = {}
        self._warned_aspect = False

    def __deepcopy__(self, memo):
        return self

    def patch(self, model: comfy.model_patcher.ModelPatcher) -> comfy.model_patcher.ModelPatcher:
        """A clone of ``model`` carrying the wrapper, the block replacements and the branch weights."""
        patched = model.clone()
        wrappers = comfy.patcher_extension.WrappersMP
        patched.add_wrapper_with_key(wrappers.SAMPLER_SAMPLE, WRAPPER_KEY, self.track_steps)
        patched.add_wrapper_with_key(wrappers.PREDICT_NOISE, WRAPPER_KEY, self.mark_evaluation)
        patched.add_wrapper_with_key(wrappers.APPLY_MODEL, WRAPPER_KEY, self.apply_model)
        block_patches = self.host.block_patches(self.branch, self.layout_scale, self.keys.context)
        for (block_kind, index), block_patch in block_patches.items():
            patched.set_model_patch_replace(block_patch, "dit", block_kind, index)
        branch_patcher = comfy.model_patcher.ModelPatcher(self.branch, load_device=model.load_device,
                                                          offload_device=model.offload_device)
        comfy_compat.refuse_device_copies(branch_patcher)
        patched.set_additional_models(WRAPPER_KEY, [branch_patcher])
        return patched

    def track_steps(self, executor, guider, sigmas, extra_args, callback, *args, **kwargs):
        sampler_function = getattr(executor.class_obj, "sampler_function", None)
        tracker = self.schedule.tracker(sigmas, getattr(sampler_function, "__name__", "").removeprefix("sample_"))

        def on_step(index, denoised, x, total_steps):
            tracker.on_step(index)
            if callback is not None:
                callback(index, denoised, x, total_steps)

        extra_args["model_options"].setdefault("transformer_options", {})[self.keys.steps] = tracker
        return executor(guider, sigmas, extra_args, on_step, *args, **kwargs)

    def mark_evaluation(self, executor, x, timestep, model_options={}, seed=None):
        options = model_options.get("transformer_options", {})
        tracker = options.get(self.keys.steps)
        if tracker is not None:
            grounded = tracker.is_grounded(float(timestep.reshape(-1)[0]))
            model_options = {**model_options, "transformer_options": {**options, self.keys.grounded: grounded}}
        return executor(x, timestep, model_options, seed)

    def apply_model(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                    **kwargs):
        comfy_compat.refuse_reference_method(kwargs)
        grounded = transformer_options.get(self.keys.grounded)
        if grounded is None:
            grounded = self.schedule.is_grounded_sigma(transformer_options.get("sample_sigmas"),
                                                       float(t.reshape(-1)[0]))
        if grounded:
            context = self.call_context(x, c_crossattn, transformer_options)
            transformer_options = {**transformer_options, self.keys.context: context}
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

    def call_context(self, latent: Tensor, context: Optional[Tensor], transformer_options: dict) -> CallContext:
        grid_h, grid_w = token_grid(latent, self.host.patch_size)
        self._check_aspect(grid_h, grid_w)
        rows = layout_rows(latent.shape[0], transformer_options.get("cond_or_uncond"))
        batch = self._instance_batch(grid_h, grid_w, rows, latent.device)
        dtype = self.branch.dtype
        num_repeats = len(rows)
        if len(self.layout.samples):
            with torch.no_grad():
                tokens = self.branch.layout_encoder(self.layout.samples.to(latent.device, dtype),
                                                    self.layout.pooled.to(latent.device, dtype))
        else:
            tokens = torch.zeros(0, self.branch.hidden_dim, device=latent.device, dtype=dtype)
        positions = layout_token_positions(self.layout.samples, grid_h, grid_w).to(latent.device)
        return CallContext(batch=batch, layout_positions=positions.repeat(num_repeats, 1),
                           txt_len=0 if context is None else context.shape[1], image_tokens=grid_h * grid_w,
                           stream=LayoutStream(tokens.repeat(num_repeats, 1)))

    def _instance_batch(self, grid_h: int, grid_w: int, rows: list[int], device) -> InstanceBatch:
        key = (grid_h, grid_w, tuple(rows), str(device))
        if key not in self._batches:
            per_instance = instance_token_indices(self.layout.layout, self.layout.samples, grid_h, grid_w)
            token_indices = [tokens for _ in rows for tokens in per_instance]
            instance_rows = [row for row in rows for _ in per_instance]
            self._batches[key] = build_instance_batch(token_indices, instance_rows, device)
        return self._batches[key]

    def _check_aspect(self, grid_h: int, grid_w: int) -> None:
        layout = self.layout.layout
        if not self._warned_aspect and abs(grid_w / grid_h - layout.width / layout.height) > 0.02 * grid_w / grid_h:
            self._warned_aspect = True
            logging.warning(
                "InstanceAssembleApply: the layout was drawn for %d×%d px but the image is %d×%d px; boxes are "
                "placed at the same relative positions, so they stretch. Match the latent size to the layout.",
                layout.width, layout.height, 16 * grid_w, 16 * grid_h)
