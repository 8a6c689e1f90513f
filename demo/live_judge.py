"""The live judge: the judge's label accuracy on a run's live grid, read on the training thread within a share
of the run's time (a hook of the run's pipeline, demo/pipeline.py)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from gancls.judge import judge_predict
from gancls.train import Finished, Samples

# The judge reads the grid in chunks this big: 80 digits at once make an 8 MB first activation that
# falls out of cache, and on the 2-core EPYC two chunks of 40 took about two thirds of one batch's time.
GRID_JUDGE_BATCH = 40
# Reading a grid pauses training (it runs between steps, on the run's cores), so grids are read only
# while that stays within this share of the run's time: every grid on a GPU, fewer on a slow CPU.
JUDGE_SHARE = 0.01


@dataclass
class GridJudged:
    """The judge's label accuracy on the live grid of `step` (an app event; comes just before that Samples,
    or, for a run's last grid, just before Finished)."""
    step: int
    accuracy: float


class LiveJudge:
    """A pipeline hook: at a Samples, the judge's reading of its grid, when due; at Finished, the reading of the
    run's last grid if it was left unread.

    A grid is read when the time since the last reading is at least its cost ÷ `share`. Run it where the
    events are made: on a training thread the judge runs on the run's own cores between steps, rather than
    on the thread relaying updates, which would take a core from them. Without a judge it reads nothing.
    """

    def __init__(self, judge: Any, share: float = JUDGE_SHARE, clock: Callable[[], float] = time.perf_counter):
        self.judge, self.share, self.clock = judge, share, clock
        self._due, self._unread = -math.inf, None  # when the next reading is due (clock); the newest grid not read

    def __call__(self, event: Any) -> list[GridJudged]:
        """The readings to show just before `event` (none, or one)."""
        if self.judge is None:
            return []
        if isinstance(event, Samples):
            if (start := self.clock()) < self._due:
                self._unread = event
                return []
            reading = read_grid(self.judge, event)
            self._due, self._unread = start + (self.clock() - start) / self.share, None
            return [reading]
        if isinstance(event, Finished) and self._unread is not None:
            return [read_grid(self.judge, self._unread)]
        return []


def read_grid(judge: Any, grid: Samples) -> GridJudged:
    """The share of `grid`'s digits the judge reads as their row's label."""
    y = torch.arange(10).repeat_interleave(grid.cols)  # [10 * cols]: the grid's rows are labels 0..9
    hits = judge_predict(judge, grid.images, batch_size=GRID_JUDGE_BATCH).predictions == y
    return GridJudged(grid.step, float(hits.float().mean()))
