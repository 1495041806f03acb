"""Grounding schedule: which sampler steps run the instance branch (spec §10).

The reference grounds loop indices ``0 .. int(ratio · num_steps) − 1`` and runs the stock model afterwards.
ComfyUI does not pass a step index to the model, so the index is recovered from the sigma being evaluated
and the sampler call's own schedule. Every model evaluation inside a grounded step (Heun, DPM++ 2S, …)
finds the same index, because intermediate sigmas lie between that step's sigma and the next one.

Split sampling rule: the index counts the steps of the *sampler call* (``sample_sigmas`` is the schedule
that call received). A KSamplerAdvanced window of steps 2–4 of 6 is a 2-step schedule, so ratio 0.5 grounds
its first step. Custom sigmas (SamplerCustom) count the same way.
"""
import torch


def grounding_steps(ratio: float, num_steps: int) -> int:
    """How many leading steps are grounded: ``int(ratio · num_steps)``, as the reference computes it."""
    return int(ratio * num_steps)


def step_index(sample_sigmas: torch.Tensor, sigma: float) -> int:
    """Index of the sampler step that evaluates ``sigma`` in the schedule ``sample_sigmas`` [n + 1]."""
    return int((sample_sigmas[:-1] >= sigma - 1e-5).sum().item()) - 1


def is_grounded(sample_sigmas: torch.Tensor | None, sigma: float, ratio: float) -> bool:
    """True when the model evaluation at ``sigma`` belongs to a grounded step.

    Without a schedule (a model call outside a sampler) every call is grounded when ``ratio > 0``.
    """
    if ratio <= 0:
        return False
    if sample_sigmas is None:
        return True
    num_steps = len(sample_sigmas) - 1
    return step_index(sample_sigmas, sigma) < grounding_steps(ratio, num_steps)
