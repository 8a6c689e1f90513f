"""The training line: admission to the app's training threads, shared by every session's Train, Resume and
ablation (a line of its own, beside Gradio's queue, so Generate and Probe always find queue places)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from .session import BusyError, Session


class TrainingGate:
    """Admission to the training threads: `slots` runs at once, at most `max_waiting` more in line.

    Gradio's queue is shared by every event, so training waits here instead, in a line of its own:
    a run beyond the line is refused at once, and Generate and Probe always find queue places.
    One place per session is the Session's own busy flag (`Session.training`).
    """

    def __init__(self, slots: int, max_waiting: int):
        self.slots, self.max_waiting = slots, max_waiting
        self._running: dict[str, float] = {}  # session id -> when its slot frees at the latest (monotonic)
        self._line: list[str] = []  # session ids, first come first served
        self._seconds: dict[str, float] = {}  # session id -> its run's longest time (for the estimated start)
        self._cond = threading.Condition()

    @contextmanager
    def place(self, session: Session, seconds: float = 0.0) -> Iterator[Callable[[float], int]]:
        """Join the line; yields `wait(timeout) -> runs ahead` (0: the slot is taken, the run may start).

        `seconds`: the longest the run may train (its time budget, within the server's cap), for
        `estimated_start`. Refuses with BusyError when the line is full. The slot or the place is
        given up on exit.
        """
        with self._cond:
            if len(self._line) >= self.max_waiting and len(self._running) >= self.slots:
                raise BusyError(f"the server's training line is full ({self.max_waiting} runs waiting for "
                                f"{self.slots} training slot{'s' * (self.slots > 1)}): try again in a few minutes")
            self._line.append(session.id)
            self._seconds[session.id] = seconds

        def wait(timeout: float) -> int:
            with self._cond:
                deadline = time.monotonic() + timeout
                while True:
                    if session.id in self._running:
                        return 0
                    stopped = session.stop.is_set()  # Stop pressed while waiting: never takes the slot
                    first = bool(self._line) and self._line[0] == session.id
                    if first and not stopped and len(self._running) < self.slots:
                        self._line.pop(0)
                        self._running[session.id] = time.monotonic() + self._seconds.get(session.id, 0.0)
                        self._cond.notify_all()
                        return 0
                    left = deadline - time.monotonic()
                    if left <= 0 or stopped:
                        return self._line.index(session.id) + 1 if session.id in self._line else 1
                    self._cond.wait(min(left, 0.25))

        try:
            yield wait
        finally:
            with self._cond:
                self._running.pop(session.id, None)
                self._seconds.pop(session.id, None)
                if session.id in self._line:
                    self._line.remove(session.id)
                self._cond.notify_all()

    def waiting(self) -> int:
        """Runs in line now."""
        with self._cond:
            return len(self._line)

    def estimated_start(self, session_id: str) -> float | None:
        """Seconds until this waiting run gets a slot at the latest, if the runs before it use their whole
        time (first come, first served); None if it is not in the line. Runs often end sooner (Stop)."""
        with self._cond:
            if session_id not in self._line:
                return None
            now = time.monotonic()
            free = sorted([max(0.0, end - now) for end in self._running.values()] +
                          [0.0] * max(0, self.slots - len(self._running)))
            for ahead in self._line[:self._line.index(session_id)]:
                free[0] += self._seconds.get(ahead, 0.0)  # the earliest free slot takes the next in line
                free.sort()
            return free[0]
