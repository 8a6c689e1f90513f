"""Turn the trainer's event stream into throttled UI updates (status, two curve plots, the sample grid)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from gancls.judge import judge_predict
from gancls.train import CheckpointSaved, Event, Finished, Metrics, Samples, Started, Trainer

from .views import D_CURVES, LOSS_CURVES, curves, labelled_grid, run_stats, save_png_fast, status_html

RUNNING = ("Training… Press Stop to keep the model as it is now; when the run ends, "
           "Generate and Probe switch to it.")
AFTER = "Generate and Probe now use this model; download its checkpoint below, or press Resume to go on."


class LiveView:
    """Collects events; `feed` says when the UI is due an update (at most once every `every` seconds).

    Plots and images are built only in `values()`, i.e. only when an update is actually sent, so
    events that arrive between updates cost a few attribute writes.
    """

    def __init__(self, trainer: Trainer, budget: float | None, grid_path: Path, every: float = 0.5,
                 judge: Any = None):
        self.trainer, self.budget, self.every, self.judge = trainer, budget, every, judge
        self.grid_accuracy: float | None = None  # the judge's label accuracy on the live grid
        self.grid_path = grid_path  # the live grid is written here (Gradio copies it before we go on)
        self.started: Started | None = None
        self.samples: Samples | None = None
        self.finished: Finished | None = None
        self.saved: Path | None = None
        self._grid_dirty = False
        self._next = 0.0
        self.updates = 0

    def feed(self, event: Event) -> bool:
        """Record one event; True if the UI should be updated now."""
        if isinstance(event, Started):
            self.started = event
        elif isinstance(event, Samples):
            self.samples, self._grid_dirty = event, True
        elif isinstance(event, CheckpointSaved):
            self.saved = event.path
        elif isinstance(event, Finished):
            self.finished = event
            if event.path is not None:
                self.saved = event.path
            return True
        elif not isinstance(event, Metrics):
            return False
        now = time.monotonic()
        if isinstance(event, Started) or now >= self._next:
            self._next = now + self.every
            return True
        return False

    def values(self) -> tuple[str, Any, Any, Any]:
        """(status HTML, loss curves, D-output curves, grid image or gr.skip())."""
        self.updates += 1
        t = self.trainer
        history = t.history
        grid: Any = gr.skip()
        if self._grid_dirty and self.samples is not None:
            if self.judge is not None:  # ~80 digits through a small CNN: a few ms, only when sent
                y = torch.arange(10).repeat_interleave(self.samples.cols)
                hits = judge_predict(self.judge, self.samples.images).predictions == y
                self.grid_accuracy = float(hits.float().mean())
            image = labelled_grid(self.samples.images, range(10), self.samples.cols, scale=2)
            grid = save_png_fast(image, self.grid_path)
            self._grid_dirty = False
        return self.status(), curves(history, LOSS_CURVES), curves(history, D_CURVES), grid

    def status(self) -> str:
        """The status box for the current state of the run."""
        t, s = self.trainer, self.started
        device, data = (s.device, s.data) if s else ("", t.data_description)
        stats = run_stats(t.last_metrics or None, t.step_count, t.total_steps, self.budget, device, data)
        if self.grid_accuracy is not None:
            stats["label accuracy (judge, live grid)"] = f"{100 * self.grid_accuracy:.0f} %"
        if self.finished is None:
            progress = t.last_metrics.get("progress", 0.0) if t.last_metrics else 0.0
            return status_html(state="running", message=RUNNING, progress=progress, stats=stats)
        f = self.finished
        if f.reason == "diverged":
            return status_html(state="error", message=f"{f.message}. Try lower learning rates.", stats=stats)
        stopped = f.reason == "stopped"
        what = "Stopped" if stopped else f"Done ({f.message})"
        progress = t.last_metrics.get("progress", 0.0) if stopped and t.last_metrics else 1.0
        return status_html(state="done", message=f"{what} at step {f.step:,}. {AFTER}", progress=progress, stats=stats)
