"""Sparsity schedules: the fraction of prunable weights pruned at each training step.

A schedule maps an optimizer step to a sparsity level in ``[0, 1)``, constant
inside each interval of ``T`` steps (the mask is fixed within a cycle). It is
what :class:`~speechbrain_sparse.pruning.iterative.IterativeMagnitudePruning`
and :class:`~speechbrain_sparse.pruning.adaptive.AdaptiveMasker` follow:

* :class:`ConstantSchedule` -- one level throughout;
* :class:`LinearStepsSchedule` -- level ``i`` during interval ``i`` (IMP/LTH
  rounds, e.g. ``[0.2, 0.5, 0.7]``);
* :class:`CubicSchedule` -- Zhu & Gupta's gradual pruning
  ``s_t = s_f + (s_i - s_f)(1 - (t - t0) / (n T))³``, evaluated at the start of
  each interval.

Every schedule has ``level(step)``, ``levels()`` (the distinct levels in
order), ``interval`` (``T``, None for a constant) and ``final_step`` (the first
step at the final level). In a YAML::

    schedule: !new:speechbrain_sparse.pruning.schedules.CubicSchedule
        initial: 0.0
        final: 0.7
        interval: 200
        num_intervals: 4

Example
-------
>>> schedule = CubicSchedule(initial=0.0, final=0.7, interval=10, num_intervals=2)
>>> [round(schedule.level(t), 6) for t in (0, 9, 10, 19, 20, 1000)]
[0.0, 0.0, 0.6125, 0.6125, 0.7, 0.7]

Authors
 * speechbrain_sparse contributors 2026
"""

import math
import numbers

from speechbrain_sparse.errors import UserInputError


def check_level(level, name="level"):
    """Returns ``level`` as a float; UserInputError naming ``name`` unless in [0, 1).

    Example
    -------
    >>> check_level(1.0, "final")
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: final: sparsity must be in [0, 1), got 1.0
    """
    try:
        value = float(level)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise UserInputError(f"{name}: sparsity must be in [0, 1), got {level!r}")
    return value


def check_steps(value, name, minimum=1):
    """Returns ``value`` as an int; UserInputError naming ``name`` unless >= minimum.

    Example
    -------
    >>> check_steps(0, "interval")
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: interval must be an integer >= 1, got 0
    """
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or value < minimum:
        raise UserInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Schedule:
    """Base of the schedules: ``level(step)`` from the interval index of ``step``.

    Subclasses set ``interval`` (``T``), ``start`` and ``final_step`` and
    implement :meth:`interval_level`.
    """

    interval = None
    start = 0
    final_step = 0

    def interval_index(self, step):
        """Returns which interval ``step`` falls in (0 before ``start``)."""
        step = check_steps(step, "step", minimum=0)
        if self.interval is None or step < self.start:
            return 0
        return (step - self.start) // self.interval

    def interval_level(self, index):
        """Returns the level of interval ``index``."""
        raise NotImplementedError

    def level(self, step):
        """Returns the sparsity at optimizer step ``step`` (a float in [0, 1))."""
        return self.interval_level(self.interval_index(step))

    def levels(self):
        """Returns the distinct levels, in the order they are reached."""
        last = self.interval_index(self.final_step)
        found = []
        for index in range(last + 1):
            value = self.interval_level(index)
            if not found or value != found[-1]:
                found.append(value)
        return found

    def describe(self):
        """Returns the settings as a plain dict (for mask metadata and reports)."""
        raise NotImplementedError


class ConstantSchedule(Schedule):
    """One sparsity level at every step, optionally held over intervals.

    With ``interval`` and ``num_intervals`` the level does not move, but the
    schedule still has intervals of ``T`` steps (re-ranking happens within
    them) and a ``final_step`` after which the mask is fixed: the schedule of
    a dynamic pathway whose init mask is already at the target.

    Arguments
    ---------
    level : float
        The sparsity, in [0, 1).
    interval : int, optional
        ``T``, steps per interval (>= 1).
    num_intervals : int, optional
        Intervals before the level is final (>= 1); needs ``interval``.

    Example
    -------
    >>> ConstantSchedule(0.7).level(12345), ConstantSchedule(0.7).levels()
    (0.7, [0.7])
    >>> held = ConstantSchedule(0.7, interval=100, num_intervals=4)
    >>> held.level(450), held.interval, held.final_step
    (0.7, 100, 400)
    """

    def __init__(self, level, interval=None, num_intervals=None):
        self.value = check_level(level, "level")
        if interval is not None:
            self.interval = check_steps(interval, "interval")
            self.num_intervals = check_steps(num_intervals, "num_intervals")
            self.final_step = self.interval * self.num_intervals

    def interval_level(self, index):
        return self.value

    def describe(self):
        if self.interval is None:
            return {"schedule": "constant", "level": self.value}
        return {"schedule": "held", "level": self.value, "interval": self.interval,
                "num_intervals": self.num_intervals}


class LinearStepsSchedule(Schedule):
    """Level ``i`` during interval ``i`` (steps ``[i T, (i+1) T)``), the last one after.

    Arguments
    ---------
    levels : sequence of float
        Strictly increasing sparsities in [0, 1).
    interval : int
        ``T``, steps per level (>= 1).

    Example
    -------
    >>> schedule = LinearStepsSchedule([0.2, 0.5, 0.7], interval=100)
    >>> [schedule.level(t) for t in (0, 99, 100, 200, 5000)], schedule.final_step
    ([0.2, 0.2, 0.5, 0.7, 0.7], 200)
    """

    def __init__(self, levels, interval):
        if isinstance(levels, (str, bytes)) or not hasattr(levels, "__len__"):
            raise UserInputError(f"levels must be a list of sparsities, got {levels!r}")
        values = [check_level(v, f"levels[{i}]") for i, v in enumerate(levels)]
        if not values:
            raise UserInputError("levels must name at least one sparsity, got []")
        for i in range(1, len(values)):
            if values[i] <= values[i - 1]:
                raise UserInputError(
                    f"levels must increase strictly (non-monotone): levels[{i - 1}]="
                    f"{values[i - 1]} then levels[{i}]={values[i]} in {values}")
        self.values = values
        self.interval = check_steps(interval, "interval")
        self.final_step = (len(values) - 1) * self.interval

    def interval_level(self, index):
        return self.values[min(index, len(self.values) - 1)]

    def describe(self):
        return {"schedule": "linear_steps", "levels": list(self.values),
                "interval": self.interval}


class CubicSchedule(Schedule):
    """Zhu & Gupta's cubic schedule, constant inside each interval of ``T`` steps.

    Interval ``j`` (steps ``[t0 + j T, t0 + (j+1) T)``) has
    ``s_f + (s_i - s_f)(1 - j / n)³``: exactly ``s_i`` before and in the first
    interval, exactly ``s_f`` from ``t0 + n T`` on (``final_step``), so it takes
    ``n + 1`` distinct levels.

    Arguments
    ---------
    initial : float
        ``s_i``, in [0, 1).
    final : float
        ``s_f``, in [0, 1) and above ``initial``.
    interval : int
        ``T`` (``Δt``), steps per interval (>= 1).
    num_intervals : int
        ``n`` (>= 1), intervals from ``s_i`` to ``s_f``.
    start : int
        ``t0``, the first step of the first interval (>= 0).

    Example
    -------
    >>> schedule = CubicSchedule(0.2, 0.7, interval=50, num_intervals=4, start=100)
    >>> [round(s, 4) for s in schedule.levels()], schedule.final_step
    ([0.2, 0.4891, 0.6375, 0.6922, 0.7], 300)
    """

    def __init__(self, initial, final, interval, num_intervals, start=0):
        self.initial = check_level(initial, "initial")
        self.final = check_level(final, "final")
        if self.final <= self.initial:
            raise UserInputError(
                f"final sparsity (target) {self.final} must be above the initial "
                f"sparsity {self.initial}")
        self.interval = check_steps(interval, "interval")
        self.num_intervals = check_steps(num_intervals, "num_intervals")
        self.start = check_steps(start, "start", minimum=0)
        self.final_step = self.start + self.num_intervals * self.interval

    def interval_level(self, index):
        if index <= 0:  # exact endpoints, not the formula's rounding of them
            return self.initial
        if index >= self.num_intervals:
            return self.final
        remaining = 1.0 - index / self.num_intervals
        return self.final + (self.initial - self.final) * remaining ** 3

    def describe(self):
        return {"schedule": "cubic", "initial": self.initial, "final": self.final,
                "interval": self.interval, "num_intervals": self.num_intervals,
                "start": self.start}
