"""A whole class on one server: class codes, a shared run's live view for watchers, its model for joiners,
and lesson links (URL parameters that preset the page).

The owner's Train stream publishes each update it sends (`Classroom.publish`); watchers wait for the
next version and relay it, so watching costs the training thread nothing. Joined sessions' Generate
and Probe use a copy of the owner's model taken on the training thread between two steps
(`Classroom.snapshot`, a hook of the run's pipeline in demo/pipeline.py), so they never see a
half-updated model and never lock the trainer.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gancls import validate
from gancls.config import ARCHES, OBJECTIVES
from gancls.errors import UserError
from gancls.models import GANCLS

from .session import Session
from .ui import D_CURVES, LOSS_CURVES, curves

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a projector without doubt
CODE_LENGTH = 6  # 31**6 ≈ 890 million codes
CODE_FORMAT = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
SNAPSHOT_SECONDS = 2.0  # joiners' model is at most this much older than the trainer's
SHARE_GRID = "share_grid.png"  # in the owner's run folder: the grid watchers are sent
WATCH_POINTS = 80  # points per curve sent to watchers: a plot's width, and little work per update


class CodeError(UserError):
    """A class code that is malformed, unknown or no longer valid."""


@dataclass(frozen=True)
class Frame:
    """One published view of a shared run (what a watcher's page shows)."""

    version: int
    state: str  # status box state: running, done, error, idle
    stats: dict[str, Any]
    progress: float | None
    message: str
    loss: Any  # curve tables (pandas) for the two plots, WATCH_POINTS per curve at most
    d: Any
    grid: str | None  # the grid picture's path
    grid_version: int  # changes when the grid changes
    running: bool


class SharedRun:
    """One session's run, shared under a class code while that session lives."""

    def __init__(self, code: str, owner: Session):
        self.code, self.owner = code, owner
        self.ended = False  # the owner's session is gone: the code is no longer valid
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._model: GANCLS | None = None
        self._model_steps = 0
        self._next_snapshot = 0.0

    # -------------------------------------------------------------- view
    def publish(self, *, state: str, stats: dict[str, Any], progress: float | None, message: str,
                history: list[dict[str, float]], grid: str | None, running: bool) -> None:
        """Record the owner's latest view (`history`: the run's metrics; `grid`: the picture's path if it
        changed, else None) and wake watchers. The tables are built once here for every watcher."""
        if grid is not None:
            grid = self._copy_grid(grid)
        loss, d = curves(history, LOSS_CURVES, WATCH_POINTS), curves(history, D_CURVES, WATCH_POINTS)
        with self._cond:
            old = self._frame
            grid_version = (old.grid_version if old else 0) + (grid is not None)
            self._frame = Frame(version=(old.version if old else 0) + 1, state=state, stats=dict(stats),
                                progress=progress, message=message, loss=loss, d=d,
                                grid=grid if grid is not None else (old.grid if old else None),
                                grid_version=grid_version, running=running)
            self._cond.notify_all()

    def _copy_grid(self, path: str) -> str | None:
        # The owner's page file is rewritten on each update; watchers get an atomically replaced copy,
        # so a watcher's download never reads a half-written picture.
        target = self.owner.run_dir / SHARE_GRID
        tmp = target.with_name(f".{SHARE_GRID}.{secrets.token_hex(4)}.tmp")
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except OSError:
            tmp.unlink(missing_ok=True)
            return None
        return str(target)

    def frame(self) -> Frame | None:
        """The latest published view (None before the first)."""
        with self._cond:
            return self._frame

    def end(self) -> None:
        """The owner's session ended: the code stops working; watchers are told."""
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    # ------------------------------------------------------------- model
    def model(self) -> tuple[GANCLS | None, int]:
        """(the shared run's latest model snapshot or None, its step)."""
        with self._cond:
            return self._model, self._model_steps

    def set_model(self, model: GANCLS | None, steps: int) -> None:
        """Make `model` (a CPU eval-mode copy nobody trains) what joined sessions use."""
        if model is None:
            return
        with self._cond:
            self._model, self._model_steps = model, steps

    def snapshot_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_snapshot:
            return False
        self._next_snapshot = now + SNAPSHOT_SECONDS
        return True


class Classroom:
    """Class codes of the server's shared runs (one per owner session)."""

    def __init__(self) -> None:
        self._by_code: dict[str, SharedRun] = {}
        self._by_owner: dict[str, SharedRun] = {}
        self._lock = threading.Lock()

    def share(self, session: Session) -> SharedRun:
        """The caller's shared run, made on the first call (UserError if the caller has no run)."""
        with session.lock:
            has_run = session.running or session.trainer is not None or session.model is not None
            model, steps = session.model, session.model_steps
        if not has_run:
            raise UserError("nothing to share yet: press Train first (sharing shows your own run to the class)")
        with self._lock:
            shared = self._by_owner.get(session.id)
            if shared is None:
                code = new_code()
                while code in self._by_code:
                    code = new_code()
                shared = self._by_code[code] = self._by_owner[session.id] = SharedRun(code, session)
                shared.set_model(model, steps)
        return shared

    def find(self, code: Any) -> SharedRun:
        """The shared run behind a class code; CodeError with a clear message otherwise."""
        text = code.strip().upper() if isinstance(code, str) else ""
        if not text:
            raise CodeError("no class code: enter the 6-character code shown by the person sharing their run")
        if not CODE_FORMAT.fullmatch(text):
            raise CodeError(f"{text[:20]!r} is not a class code: codes are {CODE_LENGTH} letters and digits "
                            f"(no 0, O, 1, I or L), e.g. {new_code()}")
        with self._lock:
            shared = self._by_code.get(text)
        if shared is None or shared.ended:
            raise CodeError(f"unknown or expired class code {text}: a code works while the page that shared it "
                            "is open; ask for the current one")
        return shared

    def of(self, session: Session) -> SharedRun | None:
        """The run `session` shares, if it shares one."""
        with self._lock:
            return self._by_owner.get(session.id)

    def end(self, session: Session) -> None:
        """The session left: its code stops working (joined sessions keep the last model)."""
        with self._lock:
            shared = self._by_owner.pop(session.id, None)
            if shared is not None:
                self._by_code.pop(shared.code, None)
        if shared is not None:
            shared.end()

    def __len__(self) -> int:
        return len(self._by_code)

    # ---------------------------------------------------- training thread
    def snapshot(self, session: Session, trainer: Any) -> None:
        """Copy `session`'s run model for joined sessions, when due (a hook of the run's pipeline, demo/pipeline.py).

        Runs on the training thread at an event, where no step is in progress: the copy is never half-updated.
        """
        shared = self.of(session)
        if shared is not None and trainer.step_count > 0 and shared.snapshot_due():
            shared.set_model(copy.deepcopy(trainer.model).cpu().eval(), trainer.step_count)


def new_code() -> str:
    """A random class code (from `secrets`: not sequential, not predictable)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def watch_link(code: str) -> str:
    """The query string that opens the page watching `code`."""
    return f"?watch={code}"


# ------------------------------------------------------------------ lesson links
LESSON_TABS = ("train", "generate", "probe", "ablation", "dview", "style", "timeline", "handwriting", "class")
LESSON_KEYS = ("seconds", "preset", "objective", "seed", "tab", "present", "watch")
SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Lesson:
    """What a lesson link asks for; None = not given (or ignored: see `notes`)."""

    seconds: float | None = None
    preset: str | None = None
    objective: str | None = None
    seed: int | None = None
    tab: str | None = None
    present: bool = False
    watch: str | None = None
    notes: tuple[str, ...] = ()  # one line per ignored parameter


def _spelled(text: str) -> int | float | str:
    """The number `text` spells (an int if it is whole), else the text itself, for the validators to judge."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:  # not spelled as this kind (or more digits than int() reads)
            pass
    return text


def _plain(text: str) -> str:
    """`text` with Markdown's markup characters escaped, so it shows as it is."""
    return re.sub(r"([\\`*_\[\]<>!|~#])", r"\\\1", text)


def read_lesson(params: Mapping[str, Any], max_seconds: float) -> Lesson:
    """The settings a page URL asks for (?seconds=30&preset=fast&objective=plain&seed=3&tab=probe&present=1
    &watch=CODE), checked by the validators the Train form uses (gancls.validate), within this server's
    `max_seconds` per run; each invalid or unknown one is left out with a note saying why."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    for key, raw in params.items():
        value = str(raw).strip()
        if key == "__theme":
            continue  # Gradio's own
        try:
            if key not in LESSON_KEYS:
                raise UserError(f"unknown link setting (known: {', '.join(LESSON_KEYS)})")
            if key == "seconds":
                values[key] = validate.number("seconds", _spelled(value), 0, max_seconds, low_open=True)
            elif key == "seed":
                values[key] = validate.seed("seed", _spelled(value))
            elif key in ("preset", "objective", "tab"):
                allowed = {"preset": ARCHES, "objective": OBJECTIVES, "tab": LESSON_TABS}[key]
                values[key] = validate.choice(key, value.lower(), allowed)
            elif key == "present":
                if value.lower() not in SWITCH:
                    raise UserError("use present=1 or present=0")
                values[key] = SWITCH[value.lower()]
            elif key == "watch":
                if not CODE_FORMAT.fullmatch(value.upper()):
                    raise UserError(f"a class code is {CODE_LENGTH} letters and digits")
                values[key] = value.upper()
        except UserError as err:
            # The page shows notes as Markdown: the link's text must not make links, pictures or bold there.
            notes.append(f"`{key}={value[:40].replace('`', chr(39))}` ignored: {_plain(str(err)[:200])}")
    return Lesson(**values, notes=tuple(notes))


def kept_grid(path: str | None) -> str | None:
    """A grid path that still exists (the owner's folder goes when their session ends)."""
    return path if path is not None and Path(path).is_file() else None
