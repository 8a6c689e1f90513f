"""One visitor's run state: the session's own trainer and trained model, kept apart from everyone else's.

Every change to a Session goes through one of its methods (the architecture test in tests/test_train.py
holds this): tabs say what happens (`start_run`, `use_upload`, `join`, `reset`), the session decides
how its fields change and under which lock. The training line is demo/gate.py; where sessions live
and the disk they may use, demo/store.py.
"""

from __future__ import annotations

import copy
import os
import shutil
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from gancls.checkpoint import META_NAME, WEIGHTS_NAME
from gancls.errors import UserError
from gancls.models import GANCLS
from gancls.train import Trainer

TIMELINE_NAME = "timeline.npz"  # a run's fixed-noise grids beside its checkpoint (demo/runstate.py)
RUN_FILES = (WEIGHTS_NAME, META_NAME, TIMELINE_NAME)  # what a kept run holds


class BusyError(UserError):
    """The session is already training (or waiting to), or the server's training queue is full."""


class RunNotFoundError(UserError):
    """No kept run has this id (never made, expired, or not a run id at all)."""


class PreviousRun(NamedTuple):
    """The run a new one replaced (`Session.start_run`), to give back if the new one trains nothing."""

    trainer: Trainer | None
    fine_tuned: weakref.ref | None


@dataclass
class Session:
    """One visitor's run: the trainer, a frozen copy of its model for inference, and the stop switch."""

    id: str
    run_dir: Path  # this session's checkpoint folder (its checkpoint is kept when the session ends)
    keep_dir: Path | None = None  # where the checkpoint goes when the visitor leaves (None: deleted)
    trainer: Trainer | None = None
    fine_tuned: weakref.ref | None = None  # the trainer that started from the pretrained weights (fine-tuning)
    model: GANCLS | None = None  # a CPU eval-mode copy of the last trained model; None = use the pretrained one
    model_steps: int = 0
    checkpoint: Path | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    running: bool = False
    closed: bool = False
    put_away: str | None = None  # run id of this visitor's run that was saved and freed while they were idle
    joined: Any = None  # the class run (demo/classroom.py SharedRun) whose model Generate and Probe use instead
    last_used: float = field(default_factory=time.monotonic)
    # Re-entrant: a tab may hold it across several steps (an upload checks, copies and then calls use_upload)
    # while the methods it calls take it again.
    lock: threading.RLock = field(default_factory=threading.RLock)

    @contextmanager
    def training(self) -> Iterator[None]:
        """Mark the session busy for one Train/Resume; refuse a second one at the same time."""
        with self.lock:
            if self.running:
                raise BusyError("this session already has a run training or waiting to train: press Stop first "
                                "(one run per visitor at a time)")
            self.running = True
            self.stop.clear()
        try:
            yield
        finally:
            with self.lock:
                self.running = False
                if self.closed:
                    self._retire()

    def check_idle(self, action: str) -> None:
        """BusyError if this session trains (or waits to): `action` (e.g. 'upload') must wait for Stop."""
        if self.running:
            raise BusyError(f"this session is training: press Stop first, then {action}")

    def request_stop(self) -> bool:
        """Ask a running Train/Resume (or ablation) to stop after its current step; False if none runs."""
        with self.lock:
            if not self.running:
                return False
            self.stop.set()
            return True

    def touch(self) -> None:
        """The visitor did something: the session is not idle (the store expires idle ones)."""
        self.last_used = time.monotonic()

    def start_run(self, trainer: Trainer, *, fine_tuned: bool) -> PreviousRun:
        """Make a new run's `trainer` this session's (`fine_tuned`: it starts from the pretrained weights);
        returns the run it replaces, for `put_back` should the new one train nothing."""
        with self.lock:
            previous = PreviousRun(self.trainer, self.fine_tuned)
            self.trainer = trainer
            self.fine_tuned = weakref.ref(trainer) if fine_tuned else None
        return previous

    def put_back(self, failed: Trainer, previous: PreviousRun) -> None:
        """A new run that trained nothing gives the session back its previous run, on disk too (unless Reset or
        an upload replaced it meanwhile)."""
        with self.lock:
            if self.trainer is not failed:
                return
            self.trainer, self.fine_tuned = previous
        if previous.trainer is not None:
            previous.trainer.save()  # the failed run's save-on-exit overwrote the previous checkpoint
        elif self.checkpoint is None or self.checkpoint.parent != self.run_dir:
            for name in (WEIGHTS_NAME, META_NAME):
                (self.run_dir / name).unlink(missing_ok=True)

    def adopt(self, trainer: Trainer, checkpoint: Path | None) -> None:
        """Make the trainer's current model the one Generate and Probe use (a copy: training may go on)."""
        model = copy.deepcopy(trainer.model).cpu().eval()
        with self.lock:
            self.model, self.model_steps, self.put_away, self.joined = model, trainer.step_count, None, None
            if checkpoint is not None:
                self.checkpoint = checkpoint

    def use_restored(self, trainer: Trainer, checkpoint: Path | None) -> None:
        """A kept run brought back (Restore): its trainer is this session's run again, and its model in use."""
        with self.lock:
            self.trainer = trainer
        self.adopt(trainer, checkpoint)

    def use_upload(self, trainer: Trainer | None, model: GANCLS, steps: int, checkpoint: Path) -> None:
        """An uploaded checkpoint replaces the session's run: `model` (CPU, eval mode) is used from now on;
        `trainer` continues it (None: it cannot be resumed); Download hands back `checkpoint`."""
        with self.lock:
            self.check_idle("upload")
            self.trainer, self.model, self.model_steps, self.checkpoint = trainer, model, steps, checkpoint

    def join(self, shared: Any) -> None:
        """Use the class run `shared` (demo/classroom.py SharedRun) for Generate and Probe from now on."""
        with self.lock:
            self.joined = shared

    def release(self) -> bool:
        """Drop the trainer and models of a session that left the store; False while its run still ends
        (it saves and is kept on its own, see `training`)."""
        with self.lock:
            if self.running:
                return False
            self.trainer = self.model = None
            return True

    def reset(self, wait: float = 10.0) -> None:
        """Stop any training, forget the session's run and model, go back to the pretrained model."""
        self.stop.set()
        deadline = time.monotonic() + wait
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:
            if self.running:
                raise BusyError("training did not stop in time; try Reset again in a moment")
            self.trainer, self.model, self.model_steps, self.checkpoint, self.put_away = None, None, 0, None, None
            self.joined = None  # back to the pretrained model, not to a class run either
            # The run's files go, but not the pictures: the page may still be fetching the last one.
            for name in RUN_FILES:
                (self.run_dir / name).unlink(missing_ok=True)
            shutil.rmtree(self.run_dir / "uploaded", ignore_errors=True)
            if self.keep_dir is not None:
                shutil.rmtree(self.keep_dir, ignore_errors=True)

    @property
    def from_pretrained(self) -> bool:
        """Whether the session's run started from the pretrained model's weights (a fine-tuning run)."""
        return self.trainer is not None and self.fine_tuned is not None and self.fine_tuned() is self.trainer

    @property
    def run_id(self) -> str:
        """The id the browser remembers to restore this run later (unguessable, not the session hash)."""
        return self.run_dir.name

    def close(self) -> None:
        """The visitor left: stop training, keep its checkpoint, delete the rest (now, or when training ends)."""
        with self.lock:
            self.closed = True
            self.stop.set()
            if not self.running:
                self._retire()

    def keep_copy(self) -> bool:
        """Put the run's latest checkpoint into the runs folder now (whole or not at all); False if it could not.

        Called after every autosave, so a server killed mid-run loses at most the autosave interval:
        after a restart, Restore finds the run under the id the browser remembers.
        """
        with self.lock:
            return self._copy_to_keep()

    def _copy_to_keep(self) -> bool:
        # Called with the lock held.
        return self.keep_dir is not None and keep_run(self.run_dir, self.keep_dir)

    def _retire(self) -> None:
        # Called with the lock held, once training has ended (the trainer saved on its way out).
        if self.keep_dir is not None and (self.run_dir / WEIGHTS_NAME).is_file() and not self._copy_to_keep():
            return  # runs/ unwritable (full disk?): leave the run where it is, in the server's temp folder
        self._delete_files()

    def _delete_files(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


def keep_run(run_dir: Path, keep_dir: Path) -> bool:
    """Copy the run in `run_dir` to `keep_dir` (whole or not at all); False if there is none or it could not."""
    if not (run_dir / WEIGHTS_NAME).is_file():
        return False
    # Into a temp name, then renamed: the kept run is whole or absent. A hard link costs no disk and
    # no time (the engine replaces its files on save, so the link keeps this version); runs/ may be
    # on another disk, then it is a copy.
    tmp = keep_dir.with_name(f".{keep_dir.name}.tmp")
    old = keep_dir.with_name(f".{keep_dir.name}.old")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                try:
                    os.link(run_dir / name, tmp / name)
                except OSError:
                    shutil.copy2(run_dir / name, tmp / name)  # keeps the save time
        if keep_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(keep_dir, old)
        os.replace(tmp, keep_dir)
        shutil.rmtree(old, ignore_errors=True)
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False  # runs/ unwritable or full: the live copy in the temp folder is still there
