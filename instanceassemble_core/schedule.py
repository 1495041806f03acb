"""Grounding schedule: which model evaluations run the instance branch (docs/reference-semantics.md §10).

The reference grounds sampler steps ``0 .. int(ratio · num_steps) − 1`` and runs the stock model afterwards.
A sampler step may evaluate the model more than once (Heun, DPM++ 2S, …); every evaluation of a grounded step
is grounded. ComfyUI passes no step index to the model, so :class:`StepTracker` recovers it from the sampler's
progress callback (fired right after the first evaluation of each step) and the sigma being evaluated.

Split sampling rule: steps are counted within each *sampler call*, over the schedule that call received. A
KSamplerAdvanced window of steps 2–4 of 6 is a 2-step schedule, so ratio 0.5 grounds its first step; custom
sigmas (SamplerCustom) count the same way.
"""
from dataclasses import dataclass

import torch

# Samplers whose corrector evaluation of step i lands exactly on sigma[i + 1], the sigma of step i + 1's first
# evaluation; only the order of evaluations tells the two apart.
CORRECTOR_AT_NEXT_SIGMA = frozenset({"heun", "heunpp2"})


def step_index(sample_sigmas, sigma: float) -> int:
    """Index of the step whose first evaluation is at ``sigma`` in the schedule ``sample_sigmas`` [n + 1]."""
    sigmas = torch.as_tensor(sample_sigmas)
    return int((sigmas[:-1] >= sigma - 1e-5).sum().item()) - 1


@dataclass(frozen=True)
class GroundingSchedule:
    """The grounding rule of one InstanceAssembleApply node, in one place: of a sampler call's ``n`` steps, steps
    ``0 .. int(ratio · n) − 1`` are grounded (the reference's loop index rule); a ratio of 0 grounds nothing."""
    ratio: float

    @property
    def never_grounds(self) -> bool:
        return self.ratio <= 0

    def grounded_steps(self, num_steps: int) -> int:
        """How many leading steps are grounded: ``int(ratio · num_steps)``, as the reference computes it."""
        return int(self.ratio * num_steps)

    def is_grounded_step(self, index: int, num_steps: int) -> bool:
        return index < self.grounded_steps(num_steps)

    def is_grounded_sigma(self, sample_sigmas, sigma: float) -> bool:
        """Grounding from the sigma alone, for model calls made outside a sampler's step loop."""
        if self.never_grounds:
            return False
        if sample_sigmas is None:
            return True
        return self.is_grounded_step(step_index(sample_sigmas, sigma), len(sample_sigmas) - 1)

    def tracker(self, sample_sigmas, sampler_name: str = "") -> "StepTracker":
        """A tracker for one sampler call over ``sample_sigmas`` [n + 1]."""
        return StepTracker(sample_sigmas, self, sampler_name)


class StepTracker:
    """Follows one sampler call: ``on_step(i)`` from the progress callback, ``is_grounded(sigma)`` once per model
    evaluation, in order; the schedule decides which steps are grounded."""

    def __init__(self, sample_sigmas, schedule: GroundingSchedule, sampler_name: str = ""):
        self.sigmas = [float(s) for s in sample_sigmas]
        self.schedule = schedule
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
        return self.schedule.is_grounded_step(self.current_step(sigma), len(self.sigmas) - 1)
