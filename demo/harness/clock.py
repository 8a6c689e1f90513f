"""A stand-in clock for the training engine, so tests count steps instead of seconds."""

from __future__ import annotations

import time


class StepClock:
    """Stands in for gancls.train's `time` module: its clock moves `dt` seconds per training step and
    stands still otherwise, so time budgets, slices and autosave intervals are exact step counts however
    busy the machine is. Tests move `now` by hand for time spent outside training."""

    def __init__(self, dt: float):
        self.now, self.dt = 1000.0, dt

    def perf_counter(self) -> float:
        return self.now

    @staticmethod
    def strftime(fmt: str, *args) -> str:
        """The real time.strftime: a checkpoint's saved_at stays a real date."""
        return time.strftime(fmt, *args)
