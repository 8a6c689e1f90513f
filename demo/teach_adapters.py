"""One function per action of the teaching tabs (ablation, D's view, style vs label, timeline and export).

Like `adapters.Actions`: each method's parameters are exactly its event's inputs (plus `request`),
and ValueErrors from the library become a clean gr.Error through `user_errors`.
"""

from __future__ import annotations

import html
import shutil
import threading
import time
import weakref
from contextlib import closing
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import numpy as np
import torch

from gancls.checkpoint import load_checkpoint
from gancls.judge import judge_predict
from gancls.models import GANCLS
from gancls.teach import (Ablation, cell_examples, heatmap_image, history_csv, label_interpolation,
                          label_score_table, matrix_summary, noise_interpolation, style_grid, timeline_animation)
from gancls.train import Finished, Samples

from .adapters import NOTHING_TRAINING, user_errors
from .context import AppContext
from .session import BusyError, Session
from .teach_views import (HEATMAP_CELL, dview_summary, heatmap_cell_at, results_frame, strip_image, verdict,
                          with_column_labels)
from .views import D_CURVES, curves, labelled_grid, save_png_fast, start_curves, status_html, upscale

MAX_ABLATION_SECONDS = 1800.0  # per arm: one ablation holds the shared training queue for twice this
UPLOAD_MAX_BYTES = 64 * 2**20  # the largest preset's checkpoint, optimiser state included, is far smaller
DVIEW_PER_CLASS = 50  # real test digits per label behind the heat map: 500 digits x 10 labels = 5,000 D calls
ABLATION_EVAL = dict(samples_per_label=50, eval_digits=1000)  # ~7 s per 'fast' model on a 2-core CPU


class TeachActions:
    """The teaching tabs' endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext, update_every: float = 0.5):
        self.ctx, self.update_every = ctx, update_every
        self._lock = threading.RLock()
        # Per model: D's score table on the fixed digits. Weak keys: a replaced model drops its entry.
        self._tables: weakref.WeakKeyDictionary[GANCLS, np.ndarray] = weakref.WeakKeyDictionary()
        self._digits: tuple[torch.Tensor, torch.Tensor] | None = None
        self._judge_accuracy: float | None = None

    def session(self, request: gr.Request | None) -> Session:
        """The caller's session."""
        return self.ctx.store.get(getattr(request, "session_hash", None))

    # --------------------------------------------------------------- ablation
    @user_errors
    def ablation(self, objective_a: str, objective_b: str, seconds: float, arch: str, seed: float,
                 request: gr.Request) -> Iterator[tuple]:
        """Train two objectives side by side (same seed and budget), live, then compare them."""
        session = self.session(request)
        number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
        if not number or not 1 <= seconds <= MAX_ABLATION_SECONDS:
            raise ValueError(f"time per objective must be from 1 to {MAX_ABLATION_SECONDS:g} seconds (got {seconds!r})")
        judge = self.judge()
        session.run_dir.mkdir(parents=True, exist_ok=True)  # the live grids are written there
        with session.training():  # one run per session: Train and the ablation share the Stop switch
            ab = Ablation(self.ctx.data, [objective_a, objective_b], arch=arch, seconds=float(seconds), seed=seed,
                          device=self.ctx.train_device("auto"), evaluate=False, judge=judge, **ABLATION_EVAL)
            ab.judge_error = self.ctx.judge_error
            arm_views = yield from self._ablation_live(ab, session)
            if session.closed:
                return  # the visitor left: nobody to show the evaluation to
            arms = ab.objectives
            for n, arm in enumerate(arms):
                yield self._ablation_status(ab, f"Training done. Measuring {arm} ({n + 1} of {len(arms)}): its "
                                                "samples, and D on real test digits with right and wrong labels…",
                                            progress=1.0), *[gr.skip()] * 10
                ab.results[arm] = self.ctx.compute.call(ab.evaluate_arm, arm)
        stopped = any(r == "stopped" for r in ab.finish_reason.values())
        heat = [heatmap_image(np.asarray(ab.results[arm]["match_matrix"]), title=f"{arm}: mean D score",
                              cell=36) for arm in arms]
        done = "Stopped" if stopped else "Done"
        yield (self._ablation_status(ab, f"{done}. The table and the heat maps compare the two models.",
                                     state="done", progress=1.0),
               *arm_views, results_frame(ab.results), heat[0], heat[1], verdict(ab.results, stopped=stopped))

    def _ablation_live(self, ab: Ablation, session: Session) -> Iterator[tuple]:
        """Stream both arms' curves and grids; returns the last (heading, curves, grid) of each arm."""
        # Both arms train on a training thread (compute.py); the UI gets at most one update per
        # `update_every` seconds.
        arms = ab.objectives
        grids: dict[str, Samples | None] = {arm: None for arm in arms}
        dirty = {arm: False for arm in arms}
        heads = [f"#### {arm}" for arm in arms]
        idle = start_curves([])[1]  # never an empty plot: Gradio fixes the colour legend from the first value
        yield (self._ablation_status(ab, "Starting both models from the same weights…"), heads[0], idle, None,
               heads[1], idle, None, None, None, None, "")
        next_update = time.monotonic() + self.update_every
        finished: set[str] = set()
        shown: dict[str, Any] = {arm: None for arm in arms}  # the grid file each arm shows now
        with closing(self.ctx.compute.stream(lambda: ab.run(session.stop))) as events:
            for arm, event in events:
                if isinstance(event, Samples):
                    grids[arm], dirty[arm] = event, True
                elif isinstance(event, Finished):
                    finished.add(arm)
                if time.monotonic() < next_update and len(finished) < len(arms):
                    continue
                out: list[Any] = [self._ablation_status(ab, "Training, taking turns in short slices (Stop keeps what "
                                                            "both have learned and compares them).")]
                for k, name in enumerate(arms):
                    grid: Any = gr.skip()
                    if dirty[name] and grids[name] is not None:
                        s = grids[name]
                        image = labelled_grid(s.images, range(10), s.cols, scale=2)
                        grid = shown[name] = save_png_fast(image, session.run_dir / f"ablation_{k}.png")
                        dirty[name] = False
                    out += [gr.skip(), curves(ab.trainers[name].history, D_CURVES), grid]
                yield (*out, gr.skip(), gr.skip(), gr.skip(), gr.skip())
                next_update = time.monotonic() + self.update_every
        # The final update repeats these, so an API caller's last result holds everything.
        return [v for k, arm in enumerate(arms) for v in (heads[k], curves(ab.trainers[arm].history, D_CURVES),
                                                          shown[arm])]

    def _ablation_status(self, ab: Ablation, message: str, state: str = "running",
                         progress: float | None = None) -> str:
        if progress is None:
            progress = sum(min(ab.used_seconds[a] / (ab.seconds or 1), 1.0) for a in ab.objectives) / len(ab.objectives)
        stats = {arm: f"{ab.trainers[arm].step_count:,} steps · {ab.used_seconds[arm]:.1f} s of {ab.seconds:g} s"
                 for arm in ab.objectives}
        stats["device"] = str(ab.device)
        return status_html(state=state, message=message, progress=progress, stats=stats)

    @user_errors
    def stop(self, request: gr.Request) -> str:
        """Ask this session's ablation (or training) to stop; what was learned is still compared."""
        if not self.session(request).request_stop():
            return NOTHING_TRAINING
        return "Stopping… both models are then measured as they are."

    def judge(self) -> Any:
        """The shared judge classifier (see AppContext.judge)."""
        return self.ctx.judge()

    # ------------------------------------------------------------ D's view
    def digits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed real test digits behind D's view: DVIEW_PER_CLASS of each label, uint8 [M, 28, 28], int64 [M]."""
        with self._lock:
            if self._digits is None:
                data = self.ctx.data
                # MNIST's test file is ordered by writer group: pick from a seeded shuffle, not a prefix.
                order = torch.randperm(len(data.test_labels), generator=torch.Generator().manual_seed(0))
                idx = torch.cat([order[data.test_labels[order] == k][:DVIEW_PER_CLASS] for k in range(10)])
                self._digits = data.test_images[idx], data.test_labels[idx]
            return self._digits

    def _table(self, model: GANCLS) -> np.ndarray:
        """D's scores [M, 10] for the fixed digits against every label, cached per model."""
        with self._lock:
            table = self._tables.get(model)
        if table is None:
            x, _ = self.digits()
            table = label_score_table(model, x)
            with self._lock:
                self._tables[model] = table
        return table

    def _judge_acc(self) -> float | None:
        judge = self.judge()
        if judge is None:
            return None
        if self._judge_accuracy is None:  # the judge and the digits never change: compute once
            x, y = self.digits()
            self._judge_accuracy = float((judge_predict(judge, x).predictions == y).float().mean())
        return self._judge_accuracy

    @user_errors
    def match_matrix(self, request: gr.Request) -> tuple[Any, str]:
        """The 10x10 heat map of D's mean score (true digit x label given) for the model in use, and its figures."""
        session = self.session(request)
        model = self.ctx.model_for(session)
        _, y = self.digits()
        table = self._table(model)  # [M, 10]
        labels = y.numpy()
        matrix = np.stack([table[labels == k].mean(axis=0) for k in range(10)])  # [10, 10]
        d_acc = float((table.argmax(axis=1) == labels).mean())
        image = heatmap_image(matrix, cell=HEATMAP_CELL)
        using = self.ctx.using(session).replace("**Using:** ", "")
        text = f"Model: {using}.\n\n" + dview_summary(d_acc, self._judge_acc(), matrix_summary(matrix), len(labels))
        return image, text

    @user_errors
    def cell_examples(self, true_label: float, given_label: float, order: str,
                      request: gr.Request) -> tuple[list[tuple[np.ndarray, str]], str]:
        """Real digits of one true label with D's score when told another label (row i, column j of the map)."""
        if true_label is None or given_label is None:
            raise ValueError("choose a true digit (row) and a label given to D (column) first")
        model = self.ctx.model_for(self.session(request))
        x, y = self.digits()
        ex = cell_examples(model, x, y, true_label, given_label, k=10, per_class=DVIEW_PER_CLASS,
                           order=order or "highest")
        i, j = int(true_label), int(given_label)
        items = [(upscale(img, 3), f"D = {s:.2f}") for img, s in zip(ex.images, ex.scores)]
        mean = float(self._table(model)[y.numpy() == i, j].mean())
        which = {"highest": "D accepts most", "lowest": "D accepts least", "first": "first"}[order or "highest"]
        right = "the right label" if i == j else "a wrong label"
        text = (f"Real **{i}**s, D told the label is **{j}** ({right}): the {len(items)} of {DVIEW_PER_CLASS} "
                f"{which}. Mean over all {DVIEW_PER_CLASS}: **{mean:.3f}**.")
        return items, text

    def pick_cell(self, evt: gr.SelectData) -> tuple[Any, Any]:
        """The (row, column) dropdown values for a click on the heat map (unchanged outside the cells)."""
        cell = heatmap_cell_at(*evt.index[:2]) if isinstance(evt.index, (list, tuple)) else None
        return (cell[0], cell[1]) if cell else (gr.skip(), gr.skip())

    # ------------------------------------------------------ style vs label
    @user_errors
    def style_grid(self, n_styles: float, seed: float, request: gr.Request) -> str:
        """Rows: one noise vector (a handwriting style) each; columns: labels 0-9."""
        session = self.session(request)
        images = style_grid(self.ctx.model_for(session), n_styles, list(range(10)), seed)  # [S, 10, 28, 28]
        grid = with_column_labels(images, range(10), scale=2, row_labels=[f"z{r + 1}" for r in range(len(images))])
        return self._png(session, grid, "style_grid.png")

    @user_errors
    def label_interpolation(self, start: float, end: float, steps: float, seed: float, request: gr.Request) -> str:
        """One noise vector, the label code sliding from one digit to another."""
        session = self.session(request)
        strip = label_interpolation(self.ctx.model_for(session), start, end, steps, seed)  # [T, 28, 28]
        t = np.linspace(0, 1, len(strip))
        captions = [f"{int(start)}" if v == 0 else f"{int(end)}" if v == 1 else f"{v:.2f}" for v in t]
        return self._png(session, strip_image(strip, captions), "label_interpolation.png")

    @user_errors
    def noise_interpolation(self, label: float, seed_a: float, seed_b: float, steps: float,
                            request: gr.Request) -> str:
        """One label, the noise moving from one seed's vector to another's."""
        session = self.session(request)
        strip = noise_interpolation(self.ctx.model_for(session), label, steps, seed_a, seed_b)  # [T, 28, 28]
        t = np.linspace(0, 1, len(strip))
        captions = ["z(a)" if v == 0 else "z(b)" if v == 1 else f"{v:.2f}" for v in t]
        return self._png(session, strip_image(strip, captions), "noise_interpolation.png")

    def _png(self, session: Session, image: np.ndarray, name: str) -> str:
        session.run_dir.mkdir(parents=True, exist_ok=True)
        return save_png_fast(image, session.run_dir / name)

    # ----------------------------------------------------- timeline, export
    def _trainer(self, session: Session, what: str):
        if session.trainer is None:
            raise ValueError(f"no training run in this session yet: press Train in the Train tab first ({what} "
                             "records your own run)")
        return session.trainer

    @user_errors
    def timeline(self, fps: float, request: gr.Request) -> tuple[str, str]:
        """The fixed-noise grids of this session's run as an animated GIF (shown, and as a file)."""
        session = self.session(request)
        trainer = self._trainer(session, "the timeline")
        path = timeline_animation(list(trainer.samples_history), session.run_dir / "gancls_timeline.gif",
                                  fps=fps, scale=2)
        return str(path), str(path)

    @user_errors
    def history_csv(self, request: gr.Request) -> str:
        """The metric history of this session's run as a CSV file."""
        session = self.session(request)
        trainer = self._trainer(session, "the history")
        return str(history_csv(list(trainer.history), session.run_dir / "gancls_history.csv"))

    @user_errors
    def upload_checkpoint(self, file: str | None, request: gr.Request) -> tuple[str, str]:
        """Load an uploaded checkpoint through the safe loader; a good one becomes this session's model."""
        if not file:
            raise ValueError("no file: choose a gancls checkpoint (.safetensors) to upload first")
        session = self.session(request)
        ckpt = load_checkpoint(file, max_bytes=UPLOAD_MAX_BYTES)  # CheckpointError (a ValueError) if unusable
        name = Path(file).name
        with session.lock:
            if session.running:
                raise BusyError("this session is training: press Stop first, then upload")
            session.run_dir.mkdir(parents=True, exist_ok=True)
            kept = session.run_dir / "uploaded" / "gancls.safetensors"
            kept.parent.mkdir(exist_ok=True)
            shutil.copyfile(ckpt.path, kept)  # Download hands back the model in use
            # The upload replaces the session's run: Resume, the timeline and the CSV belong to a Train run.
            session.trainer, session.model, session.model_steps = None, ckpt.model.cpu().eval(), ckpt.step
            session.checkpoint = kept
        train_cfg = ckpt.meta.get("train_config")
        objective = train_cfg.get("objective") if isinstance(train_cfg, dict) else None
        message = (f"Loaded **{html.escape(name)}**: a {ckpt.model.cfg.arch} model trained for {ckpt.step:,} steps"
                   + (f" with the {html.escape(str(objective))} objective. " if objective else ". ")
                   + "Generate, Probe and the teaching tabs now use it; Reset goes back to the pretrained model.")
        return message, self.ctx.using(session)
