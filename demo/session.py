"""Per-browser-session state: the session's own trainer and trained model, kept apart from everyone else's."""

from __future__ import annotations

import copy
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from gancls.models import GANCLS
from gancls.train import Trainer


class BusyError(ValueError):
    """The session is already training."""


@dataclass
class Session:
    """One visitor's run: the trainer, a frozen copy of its model for inference, and the stop switch."""

    id: str
    run_dir: Path  # this session's checkpoint folder (deleted when the session ends)
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
                    self._delete_files()

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

    def close(self) -> None:
        """The visitor left: stop training and delete the session's files (now, or when training ends)."""
        with self.lock:
            self.closed = True
            self.stop.set()
            if not self.running:
                self._delete_files()

    def _delete_files(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


class SessionStore:
    """Sessions by Gradio session hash; idle ones expire, the oldest idle ones go past `capacity`."""

    def __init__(self, root: Path, idle_seconds: float = 2 * 3600, capacity: int = 200):
        self.root, self.idle_seconds, self.capacity = Path(root), idle_seconds, capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_hash: str | None) -> Session:
        """The caller's session, created on first use."""
        key = session_hash or f"anonymous-{uuid.uuid4().hex}"  # no session: a throwaway one
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                run_dir = self.root / uuid.uuid4().hex  # not the hash: nothing guessable on disk
                session = self._sessions[key] = Session(id=key, run_dir=run_dir)
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
            session.close()

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
