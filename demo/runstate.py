"""One source of truth for a session's run: what is training, which model Generate and Probe use,
what Resume would continue and what Restore would bring back. Every Train-tab button's visibility
and the idle status line are derived from a `RunState`; no handler decides them on its own.

Also the run's timeline record: a few fixed-noise grids kept beside the checkpoint (`timeline.npz`),
because the checkpoint holds the metric history but not the grids, and a restored run should still
animate from its first steps. And what a saved run needs to go on (its settings file, the data set it
trained on), for Restore and for an uploaded checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
import torch

from gancls.checkpoint import META_NAME
from gancls.errors import UserError

from .session import TIMELINE_NAME, Session
from .ui import thin

if TYPE_CHECKING:
    from .context import AppContext

TIMELINE_GRIDS = 48  # grids kept in that file (~60 KB each before compression): enough frames for a GIF
UPLOAD_DIR = "uploaded"  # session.run_dir / UPLOAD_DIR holds an uploaded checkpoint


@dataclass(frozen=True)
class RunState:
    """A snapshot of one session's run."""

    training: bool = False  # a Train/Resume (or ablation) of this session is running or waiting in the queue
    model_steps: int | None = None  # steps of the model Generate and Probe use; None = the pretrained model
    resumable: int | None = None  # the step Resume continues from; None = nothing to resume
    uploaded: bool = False  # the model in use came from an uploaded checkpoint
    offer: int | None = None  # a kept run the browser could restore (its step; -1 = step unknown)
    fine_tuned: bool = False  # the session's run started from the pretrained model's weights

    @classmethod
    def of(cls, session: Session, offer: int | None = None) -> RunState:
        """The state of `session`; `offer` is the step of the run Restore would bring back, if any."""
        with session.lock:
            trainer, model, checkpoint = session.trainer, session.model, session.checkpoint
            running, steps, fine_tuned = session.running, session.model_steps, session.from_pretrained
        has_run = trainer is not None or model is not None
        return cls(training=running, model_steps=steps if model is not None else None,
                   resumable=trainer.step_count if trainer is not None else None,
                   uploaded=checkpoint is not None and checkpoint.parent.name == UPLOAD_DIR,
                   offer=None if has_run or running else offer,
                   fine_tuned=fine_tuned)

    def starting(self) -> RunState:
        """The state the moment Train or Resume is pressed (before the queue lets the run start)."""
        return replace(self, training=True, offer=None)

    def buttons(self) -> tuple[Any, Any, Any, Any, Any]:
        """Updates for (Train, Stop, Resume, Reset, Restore)."""
        idle = not self.training
        restore = (f"Restore your last run (step {self.offer:,})" if self.offer is not None and self.offer >= 0
                   else "Restore your last run")
        return (gr.Button(visible=idle), gr.Button(visible=self.training),
                gr.Button(visible=idle and self.resumable is not None),
                gr.Button(visible=self.training or self.model_steps is not None),
                gr.Button(restore, visible=idle and self.offer is not None))

    def message(self, pretrained_note: str = "") -> str:
        """One line on what the page is using and what each button would do now."""
        if self.training:
            return ("Starting… If other runs are training on this server, yours waits its turn here and starts "
                    "by itself (Stop leaves the line).")
        if self.model_steps is None:
            return ("Ready. Press Train for a fresh run with these settings; the curves and the grid update live. "
                    "Generate and Probe use the pretrained model until your run has trained something.")
        if self.resumable is not None:
            what = (f"the uploaded checkpoint (step {self.model_steps:,})" if self.uploaded else
                    f"the pretrained model fine-tuned by your run ({self.model_steps:,} steps)" if self.fine_tuned
                    else f"your model (step {self.model_steps:,})")
            return (f"Generate and Probe use {what}. Press Resume to go on training "
                    "it, Train for a fresh run, or Reset for the pretrained model.")
        return (f"Generate and Probe use the uploaded checkpoint (step {self.model_steps:,}). It holds weights "
                "only (no optimiser state), so it cannot be resumed: Train starts a fresh run, Reset goes back "
                "to the pretrained model.")


# ------------------------------------------------------------------ a saved run
def data_for_run(ctx: AppContext, n_train: int, holdout: int) -> Any:
    """The server's data set a saved run was trained on (by its size), for resuming it."""
    for _label, choice in ctx.data_choices():
        data = ctx.data_for(choice)
        if len(data.train_labels) - holdout == n_train:
            return data
    raise UserError("this run was trained on a data set this server does not have, so it cannot be restored here")


def read_meta(path: Path) -> dict[str, Any]:
    """The settings file beside checkpoint `path` (its step, data size, train config); {} if unreadable."""
    try:
        meta = json.loads(path.with_name(META_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


# ------------------------------------------------------------------ timeline record
def grids_of(trainer: Any) -> list[tuple[int, torch.Tensor]]:
    """The trainer's recorded grids plus the ones saved beside its checkpoint, by step, thinned."""
    saved = load_grids(Path(trainer.run_dir)) if trainer.run_dir is not None else []
    by_step = {step: images for step, images in saved}
    by_step.update({int(step): images for step, images in trainer.samples_history})
    return thin(sorted(by_step.items(), key=lambda item: item[0]), TIMELINE_GRIDS)


def save_grids(run_dir: Path, grids: list[tuple[int, torch.Tensor]]) -> None:
    """Write the grids (uint8 [10*cols, 28, 28], all the same shape) beside the run's checkpoint, atomically."""
    grids = [(s, g) for s, g in grids if g.shape == grids[-1][1].shape] if grids else []
    if not grids or not run_dir.is_dir():  # no folder: the run was reset or its session ended meanwhile
        return
    tmp = run_dir / f".{TIMELINE_NAME}.tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, steps=np.array([s for s, _ in grids], dtype=np.int64),
                            images=np.stack([g.cpu().numpy().astype(np.uint8) for _, g in grids]))
    tmp.replace(run_dir / TIMELINE_NAME)


def load_grids(run_dir: Path) -> list[tuple[int, torch.Tensor]]:
    """The grids saved in `run_dir` (empty if none or unreadable: a timeline is nice to have, not needed)."""
    try:
        with np.load(run_dir / TIMELINE_NAME, allow_pickle=False) as z:
            steps, images = z["steps"], z["images"]
    except (OSError, KeyError, ValueError):
        return []
    if images.ndim != 4 or images.dtype != np.uint8 or len(steps) != len(images):
        return []
    return [(int(s), torch.from_numpy(images[i].copy())) for i, s in enumerate(steps)]
