"""One function per UI action, between Gradio components and the gancls library.

Each method's parameters are exactly its event's inputs (plus `request`, which Gradio fills in to
find the caller's session). User mistakes raise ValueError inside the library; `user_errors`
turns them into a `gr.Error` with the same sentence, so nobody sees a traceback.
"""

from __future__ import annotations

import functools
import html
import json
import inspect
import math
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr
import numpy as np
import torch

from gancls.checkpoint import META_NAME
from gancls.images import to_mnist
from gancls.probe import label_scores
from gancls.sampling import check_labels, label_grid, save_png
from gancls.train import Event, Trainer

from .context import AppContext
from .live import AFTER, LiveView
from .session import RunNotFoundError, Session
from .settings import preset_fields, resume_config, train_configs
from .views import D_CURVES, LOSS_CURVES, curves, labelled_grid, save_png_fast, score_sentence, score_table, status_html
from .zerogpu import chunked_run

MAX_PER_LABEL = 32
NOTHING_TRAINING = "Nothing is training in this session."


def user_errors(fn: Callable) -> Callable:
    """Show ValueError/OSError messages as a clean gr.Error (generators too)."""
    def clean(e: Exception) -> gr.Error:
        text = str(e) if isinstance(e, ValueError) else f"could not read or write a file ({e.strerror or e})"
        return gr.Error(html.escape(text[:1].upper() + text[1:]), print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, OSError) as e:
                raise clean(e) from None
        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, OSError) as e:
            raise clean(e) from None
    return call


def _hash(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


class Actions:
    """The app's endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext, update_every: float = 0.5):
        self.ctx, self.update_every = ctx, update_every

    def session(self, request: gr.Request | None) -> Session:
        """The caller's session."""
        return self.ctx.store.get(_hash(request))

    # ------------------------------------------------------------------ train
    @user_errors
    def train(self, device: str, data_source: str, seconds: float | None, epochs: float | None,
              max_steps: float | None, arch: str, batch_size: float, lr_d: float, lr_g: float, seed: float,
              objective: str, loss: str, request: gr.Request) -> Iterator[tuple]:
        """Start a fresh run with these settings and stream live curves, grid and progress."""
        session = self.session(request)
        model_cfg, cfg = train_configs(arch=arch, objective=objective, loss=loss, batch_size=batch_size, lr_d=lr_d,
                                       lr_g=lr_g, seed=seed, seconds=seconds, epochs=epochs, max_steps=max_steps)
        data = self.ctx.data_for(data_source)
        dev = self.ctx.train_device(device)
        with session.training():  # the previous model stays in use until this run has trained something
            trainer = Trainer(model_cfg, cfg, data, device=dev, run_dir=session.run_dir)
            session.trainer = trainer
            view = yield from self._run(session, trainer, cfg.max_seconds)
        if session.trainer is trainer:  # else Reset came in meanwhile and has already redrawn the tab
            yield self._final(session, view)

    @user_errors
    def resume(self, seconds: float | None, epochs: float | None, max_steps: float | None,
               request: gr.Request) -> Iterator[tuple]:
        """Continue this session's run (same trainer, same random streams) with a new budget."""
        session = self.session(request)
        trainer = session.trainer
        if trainer is None:
            raise ValueError("nothing to resume: press Train first (Resume continues your own run)")
        cfg, max_seconds = resume_config(trainer.cfg, seconds, epochs, max_steps)
        with session.training():
            old, trainer.cfg = trainer.cfg, cfg
            total = trainer.total_steps
            if total is not None and trainer.step_count >= total:
                trainer.cfg = old
                raise ValueError(f"this run has already done {trainer.step_count:,} of its {total:,} steps: "
                                 "raise Epochs or Max steps (they count the whole run), or set them to 0")
            note = (f"Resuming at step {trainer.step_count:,} with the run's own settings "
                    f"({trainer.model_cfg.arch}, batch {cfg.batch_size}); only the budget fields apply.")
            view = yield from self._run(session, trainer, max_seconds, note)
        if session.trainer is trainer:
            yield self._final(session, view)

    def _events(self, session: Session, trainer: Trainer, max_seconds: float | None) -> Iterator[Event]:
        if self.ctx.gpu_chunk is not None:
            return chunked_run(self.ctx.gpu_chunk, trainer, session.stop, max_seconds)
        return self.ctx.compute.stream(lambda: trainer.run(session.stop, max_seconds=max_seconds))

    def _run(self, session: Session, trainer: Trainer, max_seconds: float | None, note: str = "") -> Iterator[tuple]:
        # Training runs on a training thread (compute.py) and does not wait for this loop, which
        # only records events and builds an update when one is due.
        session.run_dir.mkdir(parents=True, exist_ok=True)
        view = LiveView(trainer, max_seconds, session.run_dir / "live_grid.png", every=self.update_every,
                        judge=self.ctx.judge())
        try:
            with closing(self._events(session, trainer, max_seconds)) as events:
                for event in events:
                    if view.feed(event) and view.finished is None:
                        yield (*view.values(), self.ctx.using(session), gr.skip(), note)
        finally:  # also when the visitor leaves mid-run: what was trained is kept
            session.adopt(trainer, view.saved)
        return view

    def _final(self, session: Session, view: LiveView) -> tuple:
        download = gr.DownloadButton(value=str(session.checkpoint), visible=True) if session.checkpoint else gr.skip()
        return (*view.values(), self.ctx.using(session), download, "")

    @user_errors
    def stop(self, request: gr.Request) -> str:
        """Ask this session's training to stop after the current step; the model is kept."""
        return "Stopping…" if self.session(request).request_stop() else NOTHING_TRAINING

    @user_errors
    def reset(self, request: gr.Request) -> tuple:
        """Forget this session's run and go back to the pretrained model."""
        session = self.session(request)
        session.reset()
        return (*self.ctx.idle_views(), None, self.ctx.using(session), gr.DownloadButton(value=None, visible=False),
                "Back to the pretrained model.")

    @user_errors
    def download(self, request: gr.Request) -> str:
        """This session's latest checkpoint file (.safetensors with its settings in the header)."""
        path = self.session(request).checkpoint
        if path is None or not Path(path).is_file():
            raise ValueError("no checkpoint yet: train a model first (the pretrained one ships with the app)")
        return str(path)

    def using(self, request: gr.Request) -> str:
        """Which model Generate and Probe use for this session."""
        return self.ctx.using(self.session(request))

    def preset(self, arch: str) -> tuple[float, float, float]:
        """The arch's default batch size and learning rates, to refill the form."""
        p = preset_fields(arch)
        return p["batch_size"], p["lr_d"], p["lr_g"]

    def unload(self, request: gr.Request) -> None:
        """The tab was closed: stop its training; its checkpoint is kept 24 h to restore, the rest deleted."""
        self.ctx.store.drop(_hash(request))

    # ---------------------------------------------------------------- restore
    def remember(self, request: gr.Request) -> str:
        """This session's run id, for the browser to keep (gr.BrowserState) so a reload can restore the run."""
        return self.session(request).run_id

    def restore_offer(self, run_id: Any, request: gr.Request) -> Any:
        """On page load: a 'Restore your last run (step N)' button if the browser's last run is still kept."""
        session = self.session(request)
        path = self.ctx.store.find_run(run_id)
        if path is None or run_id == session.run_id or session.trainer is not None:
            return gr.Button(visible=False)
        step = _saved_step(path)
        return gr.Button(f"Restore your last run (step {step:,})" if step is not None else "Restore your last run",
                         visible=True)

    @user_errors
    def restore(self, run_id: str, request: gr.Request) -> tuple:
        """Make a kept run (by the id the browser remembered) this session's model again; Resume continues it."""
        session = self.session(request)
        path = self.ctx.store.find_run(run_id)
        if path is None:
            raise RunNotFoundError("that run is no longer kept (runs are kept 24 h after the tab closes)")
        with session.training():  # not while this session trains
            meta = _read_meta(path)
            data = self._data_for_run(int(meta.get("n_train", -1)), int(meta.get("train_config", {}).get("holdout", 0)))
            trainer = Trainer.resume(path, data, device=self.ctx.train_device("auto"), run_dir=session.run_dir)
            session.run_dir.mkdir(parents=True, exist_ok=True)
            saved = trainer.save()  # this session's own copy: Download, and kept again if this tab closes
            session.trainer = trainer
            session.adopt(trainer, saved.path if saved else None)
        grid = labelled_grid(trainer.samples().images, range(10), trainer.cfg.sample_cols, scale=2)
        status = status_html(state="done", message=f"Restored your run at step {trainer.step_count:,}. {AFTER}",
                             progress=None)
        download = gr.DownloadButton(value=str(session.checkpoint), visible=True) if session.checkpoint else gr.skip()
        return (status, curves(trainer.history, LOSS_CURVES), curves(trainer.history, D_CURVES),
                save_png_fast(grid, session.run_dir / "live_grid.png"), self.ctx.using(session), download,
                f"Restored step {trainer.step_count:,}: Generate and Probe use it; Resume continues it.",
                gr.Button(visible=False), session.run_id)

    def _data_for_run(self, n_train: int, holdout: int) -> Any:
        for _label, choice in self.ctx.data_choices():
            data = self.ctx.data_for(choice)
            if len(data.train_labels) - holdout == n_train:
                return data
        raise ValueError("this run was trained on a data set this server does not have, so it cannot be restored here")

    # --------------------------------------------------------------- generate
    @user_errors
    def generate(self, labels: list[int], per_label: float, seed: float, same_noise: bool,
                 request: gr.Request) -> tuple[str, str]:
        """A grid of generated digits, one row per chosen label (shown, and offered as a PNG file)."""
        session = self.session(request)
        y = check_labels([int(v) for v in labels or []])
        per = _whole("Samples per label", per_label, 1, MAX_PER_LABEL)
        seed = _whole("Seed", seed, 0, 2**63 - 1)
        images, _ = label_grid(self.ctx.model_for(session), y.tolist(), per, seed, same_noise=bool(same_noise))
        grid = labelled_grid(images, y.tolist(), per, scale=2)  # uint8 [H, W]
        name = f"gancls_{''.join(map(str, y.tolist()))}_x{per}_seed{seed}{'_same' if same_noise else ''}.png"
        session.run_dir.mkdir(parents=True, exist_ok=True)
        save_png(grid, session.run_dir / name)
        return str(session.run_dir / name), str(session.run_dir / name)

    # ------------------------------------------------------------------ probe
    @user_errors
    def probe(self, image: Any, label: float, request: gr.Request) -> tuple[str, Any, np.ndarray]:
        """D's match score for (image, label), its scores for all ten labels, and the 28x28 digit D saw."""
        digit, scores = self._scores(image, request)
        if label is None or label == "":
            raise ValueError("no label chosen: pick a label from 0 to 9")
        k = int(check_labels([label])[0])
        return score_sentence(float(scores[k]), k, int(scores.argmax())), score_table(scores, k), digit

    def first_probe(self) -> tuple[np.ndarray, str, int, str, Any]:
        """Gallery digit 0 probed with the pretrained model: the Probe tab's content when the page opens."""
        digit, real, label = self.gallery_digit(0)
        scores = label_scores(self.ctx.pretrained, digit)
        sentence = score_sentence(float(scores[label]), label, int(scores.argmax()))
        return digit, real, label, sentence, score_table(scores, label)

    @user_errors
    def label_scores(self, image: Any, request: gr.Request) -> dict[str, float]:
        """D's score for the image against every label 0-9."""
        _, scores = self._scores(image, request)
        return {str(k): round(float(s), 4) for k, s in enumerate(scores)}

    def _scores(self, image: Any, request: gr.Request | None) -> tuple[np.ndarray, torch.Tensor]:
        if image is None:
            raise ValueError("no image: pick a test digit, press Random digit, draw one or upload one")
        digit = to_mnist(image)  # uint8 [28, 28]
        return digit, label_scores(self.ctx.model_for(self.session(request)), digit)

    @user_errors
    def use_drawing(self, sketch: Any) -> tuple[np.ndarray, str]:
        """The drawing as an MNIST-style 28x28 digit, ready to probe."""
        if not sketch:
            raise ValueError("the drawing is empty: draw a digit first")
        return to_mnist(sketch), "Your drawing, centred and scaled to 28×28 as MNIST digits are."

    @user_errors
    def gallery_digit(self, index: float) -> tuple[np.ndarray, str, int]:
        """Gallery digit number `index`: the image, a line with its real label, and that label."""
        i = _whole("Gallery index", index, 0, len(self.ctx.gallery) - 1)
        digit, label, test_index = self.ctx.gallery[i]
        return digit, _real(test_index, label), label

    def random_digit(self) -> tuple[np.ndarray, str, int]:
        """A random MNIST test digit: the image, a line with its real label, and that label."""
        data = self.ctx.data
        i = int(np.random.default_rng().integers(len(data.test_labels)))
        label = int(data.test_labels[i])
        return data.test_images[i].numpy(), _real(i, label), label

    def uploaded(self) -> str:
        """The real-label line for an uploaded image."""
        return "Your image (real label unknown)."

    def select_index(self, evt: gr.SelectData) -> int:
        """The index of the clicked gallery digit."""
        return int(evt.index)


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or float(value) != int(value):
        raise ValueError(f"{name} must be a whole number from {lo} to {hi} (got {value!r})")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be from {lo} to {hi} (got {int(value)})")
    return int(value)



def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.with_name(META_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _saved_step(path: Path) -> int | None:
    step = _read_meta(path).get("step")
    return step if isinstance(step, int) else None


def _real(test_index: int, label: int) -> str:
    return f"MNIST test digit #{test_index:,} · **real label: {label}**"
