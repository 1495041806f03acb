"""Sampling helpers for the ComfyUI tier: real ComfyUI samplers, with ways to look at single model calls."""
import torch

import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import node_helpers

from tools.comfyui_path import import_pack


def flux_conditioning(clip, text: str, guidance: float = 3.5):
    return node_helpers.conditioning_set_values(clip.encode_from_tokens_scheduled(clip.tokenize(text)),
                                                {"guidance": guidance})


def text_conditioning(clip, text: str):
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def sample(model, positive, negative, latent, steps=4, cfg=1.0, sampler="euler", scheduler="simple", seed=0, **kw):
    """comfy.sample.sample on a zero latent of the given shape; returns the final latent [B, 16, h, w]."""
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, sampler, scheduler, positive, negative, latent,
                               disable_pbar=True, seed=seed, **kw)


def replay(model, positive, negative, latent, sigmas: torch.Tensor, inputs: list, cfg=1.0):
    """Evaluate the model once per step of ``sigmas`` on the given noisy inputs (one per step), through a real
    ComfyUI sampler call (so ``sample_sigmas``, CFG batching and wrappers are as in sampling). Returns the
    denoised output of every step. Like ComfyUI's samplers, it reports each step through the callback."""
    outputs = []

    def sampler_function(model_fn, x, sigmas, extra_args=None, callback=None, disable=None):
        ones = x.new_ones([x.shape[0]])
        for i in range(len(sigmas) - 1):
            outputs.append(model_fn(inputs[i].to(x), sigmas[i] * ones, **(extra_args or {})))
            if callback is not None:
                callback({"i": i, "denoised": outputs[-1], "x": x})
        return x

    noise = comfy.sample.prepare_noise(latent, 0)
    comfy.sample.sample_custom(model, noise, cfg, comfy.samplers.KSAMPLER(sampler_function), sigmas, positive,
                               negative, latent, disable_pbar=True, seed=0)
    return outputs


def trajectory(model, positive, negative, latent, sigmas: torch.Tensor, cfg=1.0, seed=0):
    """Euler sampling that records the noisy input of every step; returns (inputs, final latent)."""
    inputs = []

    def sampler_function(model_fn, x, sigmas, extra_args=None, callback=None, disable=None):
        ones = x.new_ones([x.shape[0]])
        for i in range(len(sigmas) - 1):
            inputs.append(x.clone())
            denoised = model_fn(x, sigmas[i] * ones, **(extra_args or {}))
            if callback is not None:
                callback({"i": i, "denoised": denoised, "x": x})
            x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return x

    noise = comfy.sample.prepare_noise(latent, seed)
    out = comfy.sample.sample_custom(model, noise, cfg, comfy.samplers.KSAMPLER(sampler_function), sigmas,
                                     positive, negative, latent, disable_pbar=True, seed=seed)
    return inputs, out


class GroundingProbe:
    """An APPLY_MODEL wrapper registered after the pack's: it sees the transformer options the pack hands to the
    blocks and records, per model call, the sigma and whether the call carried the pack's CallContext."""

    def __init__(self):
        self.calls = []
        self.outputs = []  # per call: the model output [B, C, h, w]

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kw):
        grounded = bool(import_pack().nodes.call_context.call_contexts(transformer_options))
        self.calls.append((float(t.reshape(-1)[0]), grounded, list(transformer_options.get("cond_or_uncond", []))))
        out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kw)
        self.outputs.append(out.detach().clone())
        return out

    def attach(self, model):
        probed = model.clone()
        probed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test_probe", self)
        return probed
