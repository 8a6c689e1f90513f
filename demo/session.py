"""Per-browser-session state: the session's own trainer and trained model, kept apart from everyone else's."""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import gc
import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from gancls.checkpoint import META_NAME, WEIGHTS_NAME
from gancls.models import GANCLS
from gancls.train import Trainer


KEEP_SECONDS = 24 * 3600  # a left session's checkpoint stays restorable this long
RUN_ID = re.compile(r"[0-9a-f]{32}")  # uuid4 hex: the only run ids the store ever makes


class BusyError(ValueError):
    """The session is already training."""


class RunNotFoundError(ValueError):
    """No kept run has this id (never made, expired, or not a run id at all)."""


@dataclass
class Session:
    """One visitor's run: the trainer, a frozen copy of its model for inference, and the stop switch."""

    id: str
    run_dir: Path  # this session's checkpoint folder (its checkpoint is kept when the session ends)
    keep_dir: Path | None = None  # where the checkpoint goes when the visitor leaves (None: deleted)
    trainer: Trainer | None = None
    model: GANCLS | None = None  # a CPU eval-mode copy of the last trained model; None = use the pretrained one
    model_steps: int = 0
    checkpoint: Path | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    running: bool = False
    closed: bool = False
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def training(self) -> Iterator[None]:
        """Mark the session busy for one Train/Resume; refuse a second one at the same time."""
        with self.lock:
            if self.running:
                raise BusyError("this session is already training: press Stop first")
            self.running = True
            self.stop.clear()
        try:
            yield
        finally:
            with self.lock:
                self.running = False
                if self.closed:
                    self._retire()

    def request_stop(self) -> bool:
        """Ask a running Train/Resume (or ablation) to stop after its current step; False if none runs."""
        with self.lock:
            if not self.running:
                return False
            self.stop.set()
            return True

    def adopt(self, trainer: Trainer, checkpoint: Path | None) -> None:
        """Make the trainer's current model the one Generate and Probe use (a copy: training may go on)."""
        model = copy.deepcopy(trainer.model).cpu().eval()
        with self.lock:
            self.model, self.model_steps = model, trainer.step_count
            if checkpoint is not None:
                self.checkpoint = checkpoint

    def reset(self, wait: float = 10.0) -> None:
        """Stop any training, forget the session's run and model, go back to the pretrained model."""
        self.stop.set()
        deadline = time.monotonic() + wait
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:
            if self.running:
                raise BusyError("training did not stop in time; try Reset again in a moment")
            self.trainer, self.model, self.model_steps, self.checkpoint = None, None, 0, None
            self._delete_files()

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

    def _retire(self) -> None:
        # Called with the lock held, once training has ended (the trainer saved on its way out).
        weights = self.run_dir / WEIGHTS_NAME
        if self.keep_dir is not None and weights.is_file():
            # Copy to a temp name then rename, so the kept run is whole or absent (runs/ may be another disk).
            tmp = self.keep_dir.with_name(f".{self.keep_dir.name}.tmp")
            try:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                for name in (WEIGHTS_NAME, META_NAME):
                    if (self.run_dir / name).is_file():
                        shutil.copy2(self.run_dir / name, tmp / name)  # keeps the save time
                shutil.rmtree(self.keep_dir, ignore_errors=True)
                os.replace(tmp, self.keep_dir)
            except OSError:
                return  # runs/ unwritable (full disk?): leave the run where it is, in the server's temp folder
        self._delete_files()

    def _delete_files(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


def release_memory() -> None:
    """Free what a dropped session held and hand it back to the OS (glibc keeps freed heap otherwise)."""
    gc.collect()  # the model and optimiser sit in reference cycles (modules, hooks)
    name = ctypes.util.find_library("c")
    if name and hasattr(ctypes.CDLL(name), "malloc_trim"):
        ctypes.CDLL(name).malloc_trim(0)


class SessionStore:
    """Sessions by Gradio session hash; idle ones expire, the oldest idle ones go past `capacity`.

    Live sessions work in `root` (a temp folder); when one ends, its checkpoint moves to
    `keep_root/<run id>` for `keep_seconds`, so the visitor can restore it (see `find_run`).
    """

    def __init__(self, root: Path, idle_seconds: float = 2 * 3600, capacity: int = 200,
                 keep_root: Path | None = None, keep_seconds: float = KEEP_SECONDS):
        self.root, self.idle_seconds, self.capacity = Path(root), idle_seconds, capacity
        self.keep_root, self.keep_seconds = (Path(keep_root) if keep_root else None), keep_seconds
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def get(self, session_hash: str | None) -> Session:
        """The caller's session, created on first use."""
        key = session_hash or f"anonymous-{uuid.uuid4().hex}"  # no session: a throwaway one
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                run_id = uuid.uuid4().hex  # not the hash: nothing guessable on disk
                keep = self.keep_root / run_id if self.keep_root is not None else None
                session = self._sessions[key] = Session(id=key, run_dir=self.root / run_id, keep_dir=keep)
            self._sessions.move_to_end(key)
            session.last_used = time.monotonic()
            expired = self._expired(keep=key)
        for old in expired:
            old.close()
        return session

    def drop(self, session_hash: str | None) -> None:
        """Forget a session (the tab was closed or reloaded)."""
        with self._lock:
            session = self._sessions.pop(session_hash, None) if session_hash else None
        if session is not None:
            had_model = session.trainer is not None or session.model is not None
            session.close()
            if had_model and not session.running:
                session.trainer = session.model = None
                release_memory()
        self.prune()

    def find_run(self, run_id: str | None) -> Path | None:
        """The checkpoint file of run `run_id` (a live session's or a kept one), or None."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            return None  # never build a path from anything but our own id format
        with self._lock:
            live = [s.run_dir for s in self._sessions.values() if s.run_id == run_id]
        dirs = live + ([self.keep_root / run_id] if self.keep_root is not None else [])
        return next((d / WEIGHTS_NAME for d in dirs if (d / WEIGHTS_NAME).is_file()), None)

    def prune(self, now: float | None = None) -> int:
        """Delete kept runs older than `keep_seconds` (at most once a minute unless `now` is given)."""
        if self.keep_root is None or not self.keep_root.is_dir():
            return 0
        if now is None:
            if time.monotonic() < self._next_prune:
                return 0
            self._next_prune, now = time.monotonic() + 60, time.time()
        removed = 0
        for d in self.keep_root.iterdir():
            try:
                old = now - d.stat().st_mtime > self.keep_seconds
            except OSError:
                continue
            if d.is_dir() and (RUN_ID.fullmatch(d.name) or d.name.endswith(".tmp")) and old:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed

    def shutdown(self, wait: float = 10.0) -> int:
        """Stop every session's training, wait up to `wait` s for the saves, keep the checkpoints; returns how many runs were kept."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.stop.set()
        deadline = time.monotonic() + wait
        while any(s.running for s in sessions) and time.monotonic() < deadline:
            time.sleep(0.05)
        for s in sessions:
            s.close()
        return sum(1 for s in sessions if s.keep_dir is not None and (s.keep_dir / WEIGHTS_NAME).is_file())

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, keep: str) -> list[Session]:
        # Called with the lock held. Training sessions are never evicted.
        now, out = time.monotonic(), []
        for key, s in list(self._sessions.items()):
            too_many = len(self._sessions) > self.capacity
            if key != keep and not s.running and (too_many or now - s.last_used > self.idle_seconds):
                out.append(self._sessions.pop(key))
        return out
