"""Sparsity schedules: the cubic formula, monotone levels, exact ends, bad input."""

import math

import pytest
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.schedules import (
    ConstantSchedule,
    CubicSchedule,
    LinearStepsSchedule,
)


def zhu_gupta(t, s_i, s_f, t0, n, dt):
    """s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))³ on [t0, t0 + n dt]."""
    t = min(max(t, t0), t0 + n * dt)
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


@pytest.mark.parametrize("s_i,s_f,interval,n,t0", [
    (0.0, 0.7, 50, 4, 0), (0.2, 0.9, 7, 5, 13), (0.5, 0.55, 1, 3, 2),
])
def test_cubic_equals_formula_stepwise_and_monotone(s_i, s_f, interval, n, t0):
    schedule = CubicSchedule(s_i, s_f, interval=interval, num_intervals=n, start=t0)
    previous = -1.0
    for step in range(t0 + (n + 2) * interval + 3):
        # constant inside an interval: the formula at the interval's first step
        start = step if step < t0 else t0 + (step - t0) // interval * interval
        expected = zhu_gupta(start, s_i, s_f, t0, n, interval)
        assert math.isclose(schedule.level(step), expected, rel_tol=0, abs_tol=1e-12)
        assert schedule.level(step) >= previous
        previous = schedule.level(step)
    assert schedule.level(0) == s_i and schedule.level(t0) == s_i
    assert schedule.level(t0 + n * interval) == s_f  # exact, not 1e-17 off
    assert schedule.level(10 ** 9) == s_f
    assert schedule.level(t0 + n * interval - 1) < s_f
    assert schedule.final_step == t0 + n * interval
    levels = schedule.levels()
    assert len(levels) == n + 1 and levels[0] == s_i and levels[-1] == s_f
    assert all(a < b for a, b in zip(levels, levels[1:]))


def test_linear_steps_level_i_during_interval_i():
    schedule = LinearStepsSchedule([0.2, 0.5, 0.7], interval=10)
    assert [schedule.level(t) for t in (0, 9, 10, 19, 20, 29, 30, 999)] == [
        0.2, 0.2, 0.5, 0.5, 0.7, 0.7, 0.7, 0.7]
    assert schedule.levels() == [0.2, 0.5, 0.7]
    assert schedule.final_step == 20 and schedule.interval == 10


def test_constant():
    schedule = ConstantSchedule(0.3)
    assert {schedule.level(t) for t in range(0, 1000, 37)} == {0.3}
    assert schedule.levels() == [0.3] and schedule.interval is None


def test_buildable_from_yaml():
    hparams = load_hyperpyyaml("""
constant: !new:speechbrain_sparse.pruning.schedules.ConstantSchedule
    level: 0.5
steps: !new:speechbrain_sparse.pruning.schedules.LinearStepsSchedule
    levels: [0.2, 0.5, 0.7]
    interval: 200
cubic: !new:speechbrain_sparse.pruning.schedules.CubicSchedule
    initial: 0.0
    final: 0.7
    interval: 200
    num_intervals: 4
""")
    assert hparams["constant"].level(5) == 0.5
    assert hparams["steps"].level(450) == 0.7
    assert hparams["cubic"].describe() == {
        "schedule": "cubic", "initial": 0.0, "final": 0.7, "interval": 200,
        "num_intervals": 4, "start": 0}


@pytest.mark.parametrize("build,match", [
    (lambda: LinearStepsSchedule([0.2, 0.7, 0.5], 10),
     r"non-monotone.*levels\[2\]=0.5"),
    (lambda: LinearStepsSchedule([0.2, 0.2], 10), r"non-monotone"),
    (lambda: LinearStepsSchedule([], 10), r"levels"),
    (lambda: LinearStepsSchedule([0.2, 1.0], 10), r"levels\[1\].*\[0, 1\).*1.0"),
    (lambda: LinearStepsSchedule(0.5, 10), r"levels must be a list"),
    (lambda: ConstantSchedule(-0.1), r"level.*-0.1"),
    (lambda: ConstantSchedule("high"), r"level.*'high'"),
    (lambda: CubicSchedule(0.7, 0.7, 10, 4), r"final sparsity \(target\) 0.7.*initial"),
    (lambda: CubicSchedule(0.5, 0.2, 10, 4), r"target.*0.2.*initial sparsity 0.5"),
    (lambda: CubicSchedule(0.0, 1.0, 10, 4), r"final.*\[0, 1\)"),
    (lambda: CubicSchedule(0.0, 0.7, 0, 4), r"interval.*>= 1, got 0"),
    (lambda: CubicSchedule(0.0, 0.7, -5, 4), r"interval.*got -5"),
    (lambda: CubicSchedule(0.0, 0.7, 2.5, 4), r"interval.*got 2.5"),
    (lambda: CubicSchedule(0.0, 0.7, 10, 0), r"num_intervals.*got 0"),
    (lambda: LinearStepsSchedule([0.1], 0), r"interval.*got 0"),
])
def test_bad_input_named(build, match):
    with pytest.raises(UserInputError, match=match):
        build()


def test_negative_step_named():
    with pytest.raises(UserInputError, match="step"):
        CubicSchedule(0.0, 0.7, 10, 4).level(-1)
