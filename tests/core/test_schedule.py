"""Grounding schedule: int(ratio · steps) leading steps, every evaluation of a grounded step grounded."""
import pytest

from instanceassemble_core.schedule import GroundingSchedule, step_index

SIGMAS = [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]  # 5 steps
SCHEDULE = GroundingSchedule(0.4)


@pytest.mark.parametrize("ratio, steps, expected", [(0.3, 28, 8), (0.3, 4, 1), (0.3, 50, 15), (0.29, 100, 28),
                                                    (0.0, 28, 0), (1.0, 28, 28)])
def test_grounding_steps_is_the_reference_int(ratio, steps, expected):
    assert GroundingSchedule(ratio).grounded_steps(steps) == expected


def test_step_index_from_sigma():
    assert [step_index(SIGMAS, s) for s in SIGMAS[:-1]] == [0, 1, 2, 3, 4]
    assert step_index(SIGMAS, 0.7) == 1


def test_sigma_rule_outside_a_sampler():
    assert [SCHEDULE.is_grounded_sigma(SIGMAS, s) for s in SIGMAS[:-1]] == [True, True, False, False, False]
    assert GroundingSchedule(0.3).is_grounded_sigma(None, 0.5)
    assert not GroundingSchedule(0.0).is_grounded_sigma(None, 0.5)


def run(tracker, evaluations_per_step):
    """Drive a tracker like a sampler: per step, the listed sigmas, with the progress callback after the first."""
    grounded = []
    for step, sigmas in enumerate(evaluations_per_step):
        for n, sigma in enumerate(sigmas):
            grounded.append(tracker.is_grounded(sigma))
            if n == 0:
                tracker.on_step(step)
    return grounded


def test_euler_one_evaluation_per_step():
    assert run(SCHEDULE.tracker(SIGMAS, "euler"), [[s] for s in SIGMAS[:-1]]) == [True, True, False, False, False]


def test_heun_corrector_on_the_next_sigma_belongs_to_its_step():
    steps = [[SIGMAS[i], SIGMAS[i + 1]] for i in range(4)] + [[SIGMAS[4]]]
    assert run(SCHEDULE.tracker(SIGMAS, "heun"), steps) == [True] * 4 + [False] * 5


def test_midpoint_evaluations_belong_to_their_step():
    steps = [[SIGMAS[i], (SIGMAS[i] + SIGMAS[i + 1]) / 2] for i in range(4)] + [[SIGMAS[4]]]
    assert run(SCHEDULE.tracker(SIGMAS, "dpmpp_2s_ancestral"), steps) == [True] * 4 + [False] * 5


def test_heunpp2_lookahead_two_sigmas():
    steps = [[SIGMAS[i], SIGMAS[i + 1], SIGMAS[i + 2]] for i in range(3)] + [[SIGMAS[3], SIGMAS[4]], [SIGMAS[4]]]
    assert run(SCHEDULE.tracker(SIGMAS, "heunpp2"), steps) == [True] * 6 + [False] * 6


def test_a_sampler_without_progress_callbacks_falls_back_to_sigmas():
    tracker = SCHEDULE.tracker(SIGMAS, "custom")
    assert [tracker.is_grounded(s) for s in SIGMAS[:-1]] == [True, True, False, False, False]
