"""Grounding schedule: which model evaluations run the instance branch (docs/reference-semantics.md §10).

The reference grounds sampler steps ``0 .. int(ratio · num_steps) − 1`` and runs the stock model afterwards.
A sampler step may evaluate the model more than once (Heun, DPM++ 2S, …); every evaluation of a grounded step
is grounded. ComfyUI passes no step index to the model, so :class:`StepTracker` recovers it from the sampler's
progress callback (fired right after the first evaluation of each step) and the sigma being evaluated.

Split sampling rule: steps are counted within each *sampler call*, over the schedule that call received. A
KSamplerAdvanced window of steps 2–4 of 6 is a 2-step schedule, so ratio 0.5 grounds its first step; custom
sigmas (SamplerCustom) count the same way.
"""
import torch

# Samplers whose corrector evaluation of step i lands exactly on sigma[i + 1], the sigma of step i + 1's first
# evaluation; only the order of evaluations tells the two apart.
CORRECTOR_AT_NEXT_SIGMA = frozenset({"heun", "heunpp2"})


def grounding_steps(ratio: float, num_steps: int) -> int:
    """How many leading steps are grounded: ``int(ratio · num_steps)``, as the reference computes it."""
    return int(ratio * num_steps)


def step_index(sample_sigmas, sigma: float) -> int:
    """Index of the step whose first evaluation is at ``sigma`` in the schedule ``sample_sigmas`` [n + 1]."""
    sigmas = torch.as_tensor(sample_sigmas)
    return int((sigmas[:-1] >= sigma - 1e-5).sum().item()) - 1


def is_grounded_sigma(sample_sigmas, sigma: float, ratio: float) -> bool:
    """Grounding from the sigma alone, for model calls made outside a sampler's step loop."""
    if ratio <= 0:
        return False
    if sample_sigmas is None:
        return True
    return step_index(sample_sigmas, sigma) < grounding_steps(ratio, len(sample_sigmas) - 1)


class StepTracker:
    """Follows one sampler call: ``on_step(i)`` from the progress callback, ``is_grounded(sigma)`` once per model
    evaluation, in order."""

    def __init__(self, sample_sigmas, ratio: float, sampler_name: str = ""):
        self.sigmas = [float(s) for s in sample_sigmas]
        self.grounded_steps = grounding_steps(ratio, len(self.sigmas) - 1)
        self.corrector_at_next_sigma = sampler_name in CORRECTOR_AT_NEXT_SIGMA
        self.steps_done = 0
        self.evaluations_since_step = 0

    def on_step(self, index: int) -> None:
        self.steps_done = index + 1
        self.evaluations_since_step = 0

    def current_step(self, sigma: float) -> int:
        first_since_step = self.evaluations_since_step == 0
        self.evaluations_since_step += 1
        done = self.steps_done
        if done == 0 or done >= len(self.sigmas) - 1:
            return step_index(self.sigmas, sigma)  # before the first callback, or a sampler that sends none
        if abs(sigma - self.sigmas[done]) > 1e-5 * max(1.0, abs(sigma)):
            return done - 1  # an intermediate evaluation of the step just reported
        return done - 1 if (self.corrector_at_next_sigma and first_since_step) else done

    def is_grounded(self, sigma: float) -> bool:
        return self.current_step(sigma) < self.grounded_steps
