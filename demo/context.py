"""What the whole app shares, read-only: the pretrained model, the data, the gallery digits, the sessions."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gancls.checkpoint import CheckpointError, load_checkpoint
from gancls.cli import PRETRAINED
from gancls.config import model_preset
from gancls.data import DataError, MnistData, load_embedded, load_mnist
from gancls.device import busy_cores, default_threads, describe_device, resolve_device
from gancls.encoder import StyleEncoder
from gancls.errors import UserError
from gancls.judge import JudgeError, load_judge
from gancls.models import GANCLS
from gancls.replay import ReplayError, load_replay

from .classroom import Classroom
from .compute import ComputeThreads
from .limits import TRAIN_MAX_WAITING, Limits
from .session import Session
from .store import APP_TEMP_PREFIX, PID_FILE, SessionStore, adopt_orphans
from .ui import start_curves, status_html, using_text

READY = "Ready. Press Train for a fresh run with these settings; the curves and the grid update live."

GALLERY_PER_LABEL = 5
RUNS_DIR = Path(__file__).resolve().parents[1] / "runs" / "app"  # kept runs of visitors who left (git-ignored)


@dataclass
class AppContext:
    """Built once when the app is built; every session reads it, none changes it."""

    pretrained: GANCLS  # shared, eval mode, never trained in place
    pretrained_note: str
    pretrained_history: list[dict[str, float]]  # its training curves, shown before the first run
    data: MnistData  # what the server loaded at startup
    gallery: list[tuple[np.ndarray, int, int]]  # (digit uint8 [28, 28], label, test-set index)
    store: SessionStore
    compute: ComputeThreads  # where training runs (see compute.py)
    train_concurrency: int = 1
    gpu_chunk: Callable | None = None  # ZeroGPU chunk runner (see zerogpu.py), else None
    pretrained_encoder: StyleEncoder | None = None  # the checkpoint's style encoder S, if it carries one
    pretrained_path: Path | None = None  # the shared model's checkpoint file; None = an untrained stand-in
    pretrained_meta: dict[str, Any] = field(default_factory=dict)  # what that checkpoint says about itself
    browser_secret: str | None = None  # encrypts the run id kept in the browser; stable across restarts
    limits: Limits = field(default_factory=Limits)  # what one visitor may ask of the server (limits.py)
    classroom: Classroom = field(default_factory=Classroom)  # shared runs by class code (classroom.py)
    _embedded: MnistData | None = field(default=None, repr=False)
    _judge: Any = field(default=None, repr=False)
    judge_error: str | None = None  # why the judge could not be loaded (its figures are then left out)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------ data
    def data_choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the data selector; the server's data first."""
        if self.data.source == "embedded":
            return [(f"Embedded subset ({len(self.data.train_labels):,} training digits)", "embedded")]
        return [(f"Full MNIST ({len(self.data.train_labels):,} training digits)", "server"),
                ("Embedded subset (10,000 training digits)", "embedded")]

    def data_for(self, choice: str) -> MnistData:
        """The data set behind a data-selector value."""
        if choice == "server" or (choice == "embedded" and self.data.source == "embedded"):
            return self.data
        if choice != "embedded":
            raise UserError(f"unknown data source {choice!r}: choose one of "
                             f"{', '.join(v for _, v in self.data_choices())}")
        with self._lock:
            if self._embedded is None:
                self._embedded = load_embedded()
            return self._embedded

    def judge(self) -> Any:
        """The shared judge classifier, loaded on first use (None if it is missing)."""
        with self._lock:
            if self._judge is None and self.judge_error is None:
                try:
                    self._judge = load_judge()
                except JudgeError as err:
                    self.judge_error = str(err)
            return self._judge

    # ---------------------------------------------------------------- device
    def device_choices(self) -> list[str]:
        """Devices a run may ask for here."""
        if self.gpu_chunk is not None:
            return ["auto"]
        choices = ["auto", "cpu"]
        if torch.cuda.is_available():
            choices.append("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            choices.append("mps")
        return choices

    def device_note(self) -> str:
        """What 'auto' picks, in words."""
        if self.gpu_chunk is not None:
            return "auto → ZeroGPU (a shared GPU, borrowed in short chunks)"
        return f"auto → {describe_device(resolve_device('auto'), self.compute.threads)}"

    def train_device(self, choice: str) -> torch.device:
        """The device a new trainer is built on (CPU under ZeroGPU: chunks move it to the GPU)."""
        return torch.device("cpu") if self.gpu_chunk is not None else resolve_device(choice or "auto")

    def idle_views(self) -> tuple[str, Any, Any]:
        """Status and the two plots before any run (and after Reset)."""
        loss, d = start_curves(self.pretrained_history)
        extra = " Until then the plots show how the pretrained model trained." if self.pretrained_history else ""
        return status_html(state="idle", message=READY + extra), loss, d

    # ----------------------------------------------------------------- model
    def session(self, request: Any) -> Session:
        """The caller's session (a Gradio request, or None for a raw call without one)."""
        return self.store.get(getattr(request, "session_hash", None))

    def model_for(self, session: Session) -> GANCLS:
        """The model Generate and Probe use for this session: a joined class run's latest, else its own."""
        if session.joined is not None:
            model, _ = session.joined.model()
            if model is not None:
                return model
        return session.model if session.model is not None else self.pretrained

    def using(self, session: Session) -> str:
        """The 'Using: …' line for this session."""
        if session.joined is not None:
            _, steps = session.joined.model()
            what = f"step {steps:,}" if steps else "the pretrained model until it has trained"
            live = "its last model: the sharing page has closed" if session.joined.ended else "updated live"
            return f"**Using:** class run **{session.joined.code}** ({what}, {live})"
        if session.model is None and not session.running and self.store.find_run(session.put_away) is not None:
            return self.put_away_text()
        steps = session.model_steps if session.model is not None else None
        return using_text(steps, self.pretrained_note, training=session.running, fine_tuned=session.from_pretrained)

    def put_away_text(self) -> str:
        """The 'Using: …' line for a visitor whose run was saved and freed while they were idle."""
        return (f"**Using:** {self.pretrained_note} · your run was saved and put away after "
                f"{self.limits.idle_seconds / 60:g} min without activity: press **Restore your last run** "
                "on the Train tab to bring it back")


def startup_data(data_dir: str | os.PathLike | None) -> MnistData:
    """MNIST without any network wait: the given dir or $GANCLS_DATA, else a cached download, else embedded."""
    if data_dir is not None or os.environ.get("GANCLS_DATA"):
        return load_mnist(data_dir, allow_download=False)  # asked for explicitly: a bad dir is an error
    cache = Path(os.environ.get("GANCLS_CACHE") or "~/.cache/gancls").expanduser()
    if (cache / "MNIST" / "raw").is_dir():
        try:
            return load_mnist(cache, allow_download=False)
        except DataError:
            pass  # a broken cache is not the user's problem at startup
    return load_embedded()


def load_pretrained(checkpoint: str | os.PathLike | None) -> tuple[GANCLS, str, list[dict[str, float]],
                                                                 StyleEncoder | None, Path | None, dict[str, Any]]:
    """The shared model, a note describing it, its metric history, its style encoder S (None if it has
    none), its checkpoint file and meta. No default checkpoint: an untrained model (path None, meta {})."""
    path = Path(checkpoint) if checkpoint is not None else PRETRAINED
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError:
        if checkpoint is not None or path.is_file() or (path.is_dir() and any(path.iterdir())):
            raise  # asked for, or present but broken: tell the user
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = GANCLS(model_preset("fast")).eval()
        return model, "an untrained model (no pretrained checkpoint shipped): press Train", [], None, None, {}
    data = str(ckpt.meta.get("data", "")).split(" (")[0]
    note = f"pretrained model ({ckpt.model.cfg.arch}, {ckpt.step:,} steps" + (f" on {data})" if data else ")")
    history = [h for h in ckpt.meta.get("history", []) if isinstance(h, dict)] or recorded_curves(ckpt.path)
    return ckpt.model, note, history, ckpt.encoder, ckpt.path, ckpt.meta


def recorded_curves(checkpoint: Path) -> list[dict[str, float]]:
    """The curves recorded in the replay beside a checkpoint (scripts/train_pretrained.py keeps the shipped
    model's there, not in its history); [] if there is none or it cannot be read."""
    try:
        replay = load_replay(checkpoint.parent)
    except ReplayError:
        return []
    return [m for m in replay.metrics if isinstance(m, dict)] if replay is not None else []


def gallery_digits(data: MnistData, per_label: int = GALLERY_PER_LABEL, seed: int = 0) -> list[tuple[np.ndarray, int, int]]:
    """`per_label` test digits of each label, in rows of 0..9."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for k in range(10):
        idx = torch.nonzero(data.test_labels == k).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_label]].tolist())
    out = []
    for j in range(per_label):
        for k in range(10):
            if j < len(picks[k]):
                i = picks[k][j]
                out.append((data.test_images[i].numpy(), k, i))
    return out


def browser_secret(runs_dir: Path) -> str:
    """The key gr.BrowserState encrypts with, made once and kept in `runs_dir` (so a restart can still read it)."""
    path = runs_dir / ".browser-secret"
    try:
        text = path.read_text().strip()
        if len(text) >= 16:
            return text
    except OSError:
        pass
    text = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return text


def load_context(*, checkpoint: str | None = None, data_dir: str | None = None, train_concurrency: int = 1,
                 work_dir: str | None = None, gpu_chunk: Callable | None = None,
                 runs_dir: str | os.PathLike | None = None, train_threads: int | None = None,
                 limits: Limits | None = None, pin_cores: bool = True) -> AppContext:
    """Load the shared model and data and make the session store (call once, when building the app).

    `runs_dir` keeps the checkpoints of visitors who left (24 h); default `runs/app` beside the code.
    `train_threads`: torch CPU threads per training run (default: the cores that other processes leave free
    now, split between the `train_concurrency` runs; gancls.device.default_threads); every other thread of
    the process gets one (see compute.py). No core is kept back for the app's own server or a browser on the
    same machine: with the page open in a browser on an idle 2-core machine, training with both cores ran
    faster than with one (bench/ui_browser.py). `pin_cores`: give each run's threads cores of their own (compute.py).
    """
    if train_concurrency < 1:
        raise UserError(f"train concurrency must be at least 1 (got {train_concurrency})")
    if train_threads is not None and train_threads < 1:
        raise UserError(f"train threads must be at least 1 (got {train_threads})")
    # First, before any other torch work here, so no other thread keeps a pool of OpenMP workers.
    compute = ComputeThreads(train_threads or default_threads(busy=busy_cores(), runs=train_concurrency),
                             train_concurrency, pin_cores=pin_cores)
    model, note, history, encoder, pretrained_path, meta = load_pretrained(checkpoint)
    data = startup_data(data_dir)
    if work_dir:
        root = Path(work_dir)
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix=APP_TEMP_PREFIX))
        (root / PID_FILE).write_text(f"{os.getpid()}\n")  # so a later start knows whether this folder is orphaned
        atexit.register(shutil.rmtree, root, True)  # live files go; kept checkpoints are in runs_dir
    keep = Path(runs_dir) if runs_dir is not None else RUNS_DIR
    try:
        keep.mkdir(parents=True, exist_ok=True)
        secret = browser_secret(keep)
    except OSError as e:
        raise UserError(f"cannot use {keep} as the runs folder ({e.strerror or e})") from None
    limits = limits or Limits()
    if not work_dir:  # runs of an app that was killed (kill -9, a crash) become restorable again
        adopt_orphans(root.parent, keep, own=root)
    store = SessionStore(root, keep_root=keep, idle_seconds=limits.idle_seconds,
                         anonymous_seconds=limits.anonymous_seconds, runs_quota=limits.runs_quota_mb * 2**20,
                         temp_quota=limits.temp_quota_mb * 2**20, train_slots=train_concurrency,
                         train_waiting=TRAIN_MAX_WAITING)
    store.prune(now=time.time())
    ctx = AppContext(pretrained=model, pretrained_note=note, pretrained_history=history, data=data,
                     gallery=gallery_digits(data), store=store, train_concurrency=train_concurrency, compute=compute,
                     gpu_chunk=gpu_chunk, browser_secret=secret, limits=limits, pretrained_encoder=encoder,
                     pretrained_path=pretrained_path, pretrained_meta=meta)
    store.on_free = ctx.classroom.end  # a session that leaves takes its class code with it
    return ctx
