"""Tab 1 · Train: start, stop, resume, reset and restore a run; live curves, grid and quality meter.

Layout and handlers side by side. Each handler's parameters are exactly its event's inputs (plus
`request`, which Gradio fills in to find the caller's session).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from gancls.config import ARCHES, LOSSES, OBJECTIVES, Budget, train_preset
from gancls.draw import labelled_grid, save_png_fast
from gancls.errors import UserError
from gancls.models import GANCLS
from gancls.train import CheckpointSaved, Event, Finished, Samples, Started, Trainer

from ..components import WholeNumber
from ..context import AppContext
from ..forms import capped_budget, read_settings, wait_text
from ..live import live
from ..live_judge import GridJudged
from ..pipeline import run_pipeline
from ..replay_view import ReplayView
from ..runstate import RunState, data_for_run, grids_of, load_grids, read_meta, save_grids
from ..session import TIMELINE_NAME, RunNotFoundError, Session
from ..ui import (D_CURVES, LOSS_CURVES, NOTHING_TRAINING, UPDATE_EVERY, curves, d_plot, kept_file, loss_plot, png,
                  session_hash, status_html, user_errors)

RUNNING = ("Training… Press Stop to keep the model as it is now; when the run ends, "
           "Generate and Probe switch to it.")
SCRATCH, PRETRAINED = "scratch", "pretrained"  # where a new run's weights start (the Start from choice)
START_CHOICES = [("Start from scratch (random weights)", SCRATCH),
                 ("Start from the pretrained model (fine-tune)", PRETRAINED)]
AFTER = "Generate and Probe now use this model; download its checkpoint below, or press Resume to go on."
# After Download's click has handed over the file: save it, then forget it, so the next click asks the
# server again (a DownloadButton that holds a value also downloads that old file when clicked).
SAVE_DOWNLOAD_JS = """(file) => {
  if (file && file.url) {
    const a = document.createElement("a");
    a.href = file.url; a.download = file.orig_name || "gancls.safetensors";
    document.body.appendChild(a); a.click(); a.remove();
  }
  return null;
}"""
TRAIN_HELP = """**Reading the curves** (fast preset on MNIST; counted in steps, so a slow CPU just gets less far).
D is rewarded for 1 only on real digits with their right label, 0 on fakes and on real digits with a wrong label.
**First 50–100 steps:** D cannot read labels yet, so *D(real, wrong label)* lies on *D(real, right label)*, both
near 0.65, and hides it; *D(fake)* drops to about 0.1 within 10 steps. A 20–60 s run on a slow CPU may end here.
**Then** D learns the labels: *D(real, wrong)* falls away (about 0.3 by step 150, 0.1 after 1,000) while G improves
and *D(fake)* climbs back (about 0.5 by step 500). *D(real, right)* stays near 0.65–0.75, never 1: D cannot yet
tell G's good fakes from real digits, and with least-squares targets that pulls both towards ⅔. The lesson
is the gap between right and wrong label. **Losses** are sums over the batch, not means: they grow with the batch
size; read their trend."""
GRID_HELP = """**Fixed-noise samples.** Same noise at every update: row *r* is label *r*, each column one
noise vector (one handwriting style), so you see each style learn to draw every digit. **Judge**: a separate
digit classifier, trained on its own on MNIST (99.4 % right on test digits) and never part of the GAN; "label
accuracy" is the share of the grid's digits it reads as their row's label (10 % is chance). Reading pauses
training, so on a slow CPU it reads only some grids; a step in brackets says which grid the figure is from."""


# ---------------------------------------------------------------- live view
class RunView:
    """What the Train tab shows of one run, built from its events (see live.py)."""

    def __init__(self, trainer: Trainer, budget: Budget, grid_path: Path):
        self.trainer, self.budget, self.grid_path = trainer, budget, grid_path
        self.grid_accuracy: float | None = None  # the judge's label accuracy on the newest grid shown that it read
        self.grid_accuracy_step: int | None = None  # that grid's step
        self._judged: GridJudged | None = None  # the judge's reading of the newest grid
        self.started: Started | None = None
        self.samples: Samples | None = None
        self.finished: Finished | None = None
        self.saved: Path | None = None
        self._grid_dirty = False

    def feed(self, event: Event | GridJudged) -> bool:
        """Record one event; True if the UI must be updated at once (start and end of the run)."""
        if isinstance(event, Started):
            self.started = event
            return True
        if isinstance(event, GridJudged):
            self._judged = event
        elif isinstance(event, Samples):
            self.samples, self._grid_dirty = event, True
        elif isinstance(event, CheckpointSaved):
            self.saved = event.path
        elif isinstance(event, Finished):
            self.finished = event
            self.saved = event.path or self.saved
            return True
        return False

    def values(self) -> tuple[str, Any, Any, Any]:
        """(status HTML, loss curves, D-output curves, grid image or gr.skip())."""
        grid: Any = gr.skip()
        if self._judged is not None and self.samples is not None and self._judged.step == self.samples.step:
            self.grid_accuracy, self.grid_accuracy_step = self._judged.accuracy, self._judged.step
        if self._grid_dirty and self.samples is not None:
            image = labelled_grid(self.samples.images, range(10), self.samples.cols, scale=2)
            grid = save_png_fast(image, self.grid_path)
            self._grid_dirty = False
        history = self.trainer.history
        return self.status(), curves(history, LOSS_CURVES), curves(history, D_CURVES), grid

    def status(self) -> str:
        """The status box for the current state of the run."""
        return status_html(**self.status_parts())

    def status_parts(self) -> dict[str, Any]:
        """The status box's state, message, progress and figures (a shared run's watchers get them too)."""
        t, s, m = self.trainer, self.started, self.trainer.last_metrics
        stats: dict[str, Any] = {"step": f"{t.step_count:,}" + (f" / {s.total_steps:,}" if s and s.total_steps else "")}
        if m:
            stats["epoch"] = f"{m['epoch']:.2f}"
            stats["images/s"] = f"{m['images_per_s']:,.0f}"
            stats["elapsed"] = f"{m['elapsed']:.1f} s" + (f" of {self.budget.seconds:g} s" if self.budget.seconds else "")
        stats["device"] = s.device if s else t.describe_device()
        stats["data"] = (s.data if s else t.data_description).split(" from ")[0]
        if self.grid_accuracy is not None:
            reading = f"{100 * self.grid_accuracy:.0f} %"
            if self.samples is not None and self.samples.step != self.grid_accuracy_step:
                reading += f" (grid of step {self.grid_accuracy_step:,})"  # the judge left the grid shown unread
            stats["label accuracy (judge, live grid)"] = reading
        progress = m.get("progress", 0.0) if m else 0.0
        if self.finished is None:
            return dict(state="running", message=RUNNING, progress=progress, stats=stats)
        f = self.finished
        if f.reason == "diverged":
            return dict(state="error", message=f"{f.message}. Try lower learning rates.", stats=stats)
        stopped = f.reason == "stopped"
        what = "Stopped" if stopped else f"Done ({f.message})"
        return dict(state="done", message=f"{what} at step {f.step:,}. {AFTER}",
                    progress=progress if stopped else 1.0, stats=stats)


# ------------------------------------------------------------------ handlers
class TrainTab:
    """The Train tab's endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext, update_every: float = UPDATE_EVERY):
        self.ctx, self.update_every = ctx, update_every

    def session(self, request: gr.Request | None) -> Session:
        return self.ctx.session(request)

    @user_errors
    def train(self, device: str, data_source: str, seconds: float | None, epochs: float | None,
              max_steps: float | None, arch: str, batch_size: float, lr_d: float, lr_g: float, seed: float,
              objective: str, loss: str, start: str | None = SCRATCH, request: gr.Request = None) -> Iterator[tuple]:
        """Start a run with these settings (from random weights, or from the pretrained model's: `start`) and
        stream live curves, grid and progress."""
        session, limits = self.session(request), self.ctx.limits
        budget, capped = capped_budget(seconds, epochs, max_steps, limits.max_run_seconds)
        base = self._base(start)
        model_cfg, cfg = read_settings(arch=base.cfg.arch if base is not None else arch, objective=objective,
                                       loss=loss, batch_size=batch_size, lr_d=lr_d, lr_g=lr_g, seed=seed,
                                       max_batch=limits.max_batch, autosave_seconds=limits.autosave_seconds)
        note = ""
        if base is not None:
            model_cfg = base.cfg
            note = (f"Fine-tuning the {self.ctx.pretrained_note} with fresh optimisers (the shipped checkpoint "
                    "holds weights only); steps count from 0 for this run. Model size does not apply.")
        data = self.ctx.data_for(data_source)
        dev = self.ctx.train_device(device)
        # One run per session, waiting or training; the previous model stays in use until this run has trained.
        with session.training(), self.ctx.store.gate.place(session, budget.seconds or 0.0) as wait:
            yield from self._wait_for_slot(session, wait)
            # A copy of the shared pretrained model: its own weights train, the one everyone uses never does.
            model = copy.deepcopy(base) if base is not None else None
            trainer = Trainer(model_cfg, cfg, data, device=dev, run_dir=session.run_dir, model=model)
            (session.run_dir / TIMELINE_NAME).unlink(missing_ok=True)  # a fresh run: the old timeline goes
            previous = session.start_run(trainer, fine_tuned=base is not None)
            try:
                view = yield from self._stream(session, trainer, budget, (note + " " + capped).strip())
            finally:
                if trainer.step_count == 0:  # failed or stopped before its first step: keep the previous run
                    session.put_back(trainer, previous)
        final = self._final_if_current(session, trainer, view)
        if final is not None:
            yield final

    def _base(self, start: str | None) -> GANCLS | None:
        """The weights a new run starts from: None for random ones (from scratch), else the pretrained model."""
        if start in (None, "", SCRATCH):
            return None
        if start != PRETRAINED:
            raise UserError(f"Start from must be {SCRATCH!r} or {PRETRAINED!r} (got {start!r})")
        if self.ctx.pretrained_path is None:
            raise UserError("this server has no pretrained model to fine-tune: start from scratch")
        return self.ctx.pretrained

    @user_errors
    def resume(self, seconds: float | None, epochs: float | None, max_steps: float | None,
               request: gr.Request) -> Iterator[tuple]:
        """Continue this session's run (same trainer, same random streams) with a new budget."""
        session = self.session(request)
        trainer = session.trainer
        if trainer is None:
            raise UserError("nothing to resume: press Train first (Resume continues your own run)")
        too_big = self.ctx.limits.batch_refusal(trainer.cfg.batch_size)
        if too_big:  # a run uploaded or restored from a server with other limits
            raise UserError(f"this run cannot be resumed here: {too_big}; Train starts a new run within it")
        budget, capped = capped_budget(seconds, epochs, max_steps, self.ctx.limits.max_run_seconds)
        total = trainer.total_steps(budget)
        if total is not None and trainer.step_count >= total:
            raise UserError(f"this run has already done {trainer.step_count:,} of its {total:,} steps: raise Epochs "
                            "or Max steps (they count the whole run), or set them to 0")
        note = (f"Resuming at step {trainer.step_count:,} with the run's own settings "
                f"({trainer.model_cfg.arch}, batch {trainer.cfg.batch_size}); only the budget fields apply. ")
        with session.training(), self.ctx.store.gate.place(session, budget.seconds or 0.0) as wait:
            yield from self._wait_for_slot(session, wait)
            view = yield from self._stream(session, trainer, budget, note + capped)
        final = self._final_if_current(session, trainer, view)
        if final is not None:
            yield final

    def _wait_for_slot(self, session: Session, wait: Any) -> Iterator[tuple]:
        """While the run waits in the training line (demo/gate.py TrainingGate): a status with the runs ahead."""
        while (ahead := wait(1.0)) > 0:
            if session.stop.is_set() or session.closed:
                raise UserError("stopped before the run started (it was waiting for a training slot)")
            eta = self.ctx.store.gate.estimated_start(session.id)
            message = (f"Waiting for a training slot: {ahead} run{'s' * (ahead > 1)} ahead of yours. "
                       "Press Stop to leave the line.")
            stats = {"place in line": f"{ahead} of {self.ctx.store.gate.waiting()}",
                     "estimated start": "now" if eta is None else f"within {wait_text(eta)}"}
            yield (status_html(state="waiting", message=message, stats=stats), gr.skip(), gr.skip(), gr.skip(),
                   self.ctx.using(session), gr.skip(), "")

    def _final_if_current(self, session: Session, trainer: Trainer, view: RunView) -> tuple | None:
        """The run's last view, unless Reset or leaving has redrawn or ended it (decided under the session's
        lock, so a Reset cannot delete files while they are drawn)."""
        with session.lock:
            if session.trainer is trainer and not session.closed:
                return self._final(session, view)
        return None

    def _stream(self, session: Session, trainer: Trainer, budget: Budget, note: str = "") -> Iterator[tuple]:
        # Training and the work beside it run on a training thread (demo/pipeline.py); this loop only relays
        # its events.
        session.run_dir.mkdir(parents=True, exist_ok=True)  # the live grid is written there
        view = RunView(trainer, budget, session.run_dir / "live_grid.png")
        try:
            first = True
            for _ in live(run_pipeline(self.ctx, session, trainer, budget), view.feed, self.update_every):
                if view.finished is None:  # the 'Using:' line and the note change only when a run starts or ends
                    values = view.values()
                    self._publish(session, view, values)
                    yield (*values, *((self.ctx.using(session), gr.skip(), note) if first else [gr.skip()] * 3))
                    first = False
        finally:  # also when the visitor leaves mid-run: what was trained is kept (a run that trained nothing
            if trainer.step_count > 0:  # must not replace the model in use with an untrained one)
                session.adopt(trainer, view.saved)
                if (shared := self.ctx.classroom.of(session)) is not None:
                    shared.set_model(session.model, session.model_steps)
            if not session.closed:  # a closed session's folder is being kept or deleted: leave it alone
                save_grids(session.run_dir, grids_of(trainer))  # so a restored run still has its timeline
        return view

    def _final(self, session: Session, view: RunView) -> tuple:
        values = view.values()
        self._publish(session, view, values)
        return (*values, self.ctx.using(session), self._download(session), "")

    def _publish(self, session: Session, view: RunView, values: tuple) -> None:
        """Hand this update to the class run's watchers, if this session shares its run."""
        if (shared := self.ctx.classroom.of(session)) is not None:
            grid = values[3] if isinstance(values[3], str) else None
            shared.publish(**view.status_parts(), history=view.trainer.history, grid=grid,
                           running=view.finished is None)

    @staticmethod
    def _download(session: Session) -> Any:
        # Shown without a file: Gradio copies a checkpoint into its cache only when Download is clicked.
        return gr.DownloadButton(value=None, visible=True) if kept_file(session.checkpoint) else gr.skip()

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
        path = kept_file(self.session(request).checkpoint)
        if path is None:
            raise UserError("no checkpoint yet: train a model first (the pretrained one ships with the app)")
        return path

    def preset(self, arch: str) -> tuple[float, float, float]:
        """The arch's default batch size and learning rates, to refill the form."""
        cfg = train_preset(arch)
        return cfg.batch_size, cfg.lr_d, cfg.lr_g

    # ----------------------------------------------------- derived controls
    def begin(self, request: gr.Request) -> tuple:
        """Train or Resume was pressed: show Stop and a waiting status at once (the run may wait in the queue)."""
        state = RunState.of(self.session(request)).starting()
        return (status_html(state="waiting", message=state.message()), *state.buttons())

    def settle(self, status: str, request: gr.Request) -> tuple:
        """After any run action: the buttons from the session's state; the status only if it still says 'waiting'
        (a run that failed before starting), else the run's own final status stays."""
        state = RunState.of(self.session(request))
        keep = not (isinstance(status, str) and "gc-waiting" in status)
        return (gr.skip() if keep else self.state_status(state), *state.buttons())

    def show_state(self, request: gr.Request) -> tuple:
        """Status and buttons after the model changed outside a run (an upload, a Reset)."""
        state = RunState.of(self.session(request))
        return (self.state_status(state), *state.buttons())

    def state_status(self, state: RunState) -> str:
        if state.model_steps is None and not state.training:
            return self.ctx.idle_views()[0]
        return status_html(state="waiting" if state.training else "idle", message=state.message())

    # -------------------------------------------------------------- restore
    def remember(self, request: gr.Request) -> tuple[str, str]:
        """This session's run id, for the browser to keep (gr.BrowserState for the whole browser, and the
        tab's own sessionStorage) so a reload can restore this tab's run."""
        run_id = self.session(request).run_id
        return run_id, run_id

    def offer(self, tab_run: Any, last_run: Any, request: gr.Request) -> tuple:
        """On page load: this tab's last run (after a reload) or else the browser's, if still kept and not
        already this session's; returns the Restore button and the id it would restore."""
        run_id = tab_run if self.ctx.store.find_run(tab_run) is not None else last_run
        step = self._offer_step(run_id, self.session(request))
        buttons = RunState.of(self.session(request), offer=step).buttons()
        return buttons[-1], (run_id if step is not None else "")

    def restore_offer(self, run_id: Any, request: gr.Request) -> Any:
        """On page load: a 'Restore your last run (step N)' button if the browser's last run is still kept."""
        step = self._offer_step(run_id, self.session(request))
        return RunState.of(self.session(request), offer=step).buttons()[-1]

    def put_away(self, request: gr.Request) -> tuple:
        """Every minute: if this visitor's run was saved and freed while they were idle, the 'Using:' line says
        so and Restore offers it (this check does not count as activity, so it never keeps a session alive)."""
        run_id = self.ctx.store.put_away(session_hash(request))
        path = self.ctx.store.find_run(run_id)
        if run_id is None or path is None:
            return gr.skip(), gr.skip(), gr.skip()
        step = read_meta(path).get("step")
        restore = RunState(offer=step if isinstance(step, int) else -1).buttons()[-1]
        return self.ctx.put_away_text(), restore, run_id

    def _offer_step(self, run_id: Any, session: Session) -> int | None:
        # The step of the kept run Restore would bring back (-1: unknown), or None if there is none to offer.
        path = self.ctx.store.find_run(run_id)
        if path is None or run_id == session.run_id:
            return None
        step = read_meta(path).get("step")
        return step if isinstance(step, int) else -1

    @user_errors
    def restore(self, run_id: str, request: gr.Request) -> tuple:
        """Make a kept run (by the id the browser remembered) this session's model again; Resume continues it."""
        session = self.session(request)
        session.check_idle("Restore")
        path = self.ctx.store.find_run(run_id)
        if path is None:
            raise RunNotFoundError("that run is no longer kept (runs are kept 24 h after the tab closes)")
        with session.training():  # not while this session trains
            meta = read_meta(path)
            holdout = int(meta.get("train_config", {}).get("holdout", 0))
            data = data_for_run(self.ctx, int(meta.get("n_train", -1)), holdout)
            trainer = Trainer.resume(path, data, device=self.ctx.train_device("auto"), run_dir=session.run_dir,
                                     autosave_seconds=self.ctx.limits.autosave_seconds)
            session.run_dir.mkdir(parents=True, exist_ok=True)
            grids = load_grids(path.parent)  # the kept run's timeline (the checkpoint holds only its curves)
            (session.run_dir / TIMELINE_NAME).unlink(missing_ok=True)
            save_grids(session.run_dir, grids)
            saved = trainer.save()  # this session's own copy: Download, and kept again if this tab closes
            session.use_restored(trainer, saved.path if saved else None)
        grid = labelled_grid(trainer.samples().images, range(10), trainer.cfg.sample_cols, scale=2)
        save_grids(session.run_dir, grids_of(trainer))
        status = status_html(state="done", message=f"Restored your run at step {trainer.step_count:,}. {AFTER}")
        return (status, curves(trainer.history, LOSS_CURVES), curves(trainer.history, D_CURVES),
                png(session, grid, "live_grid.png"), self.ctx.using(session), self._download(session),
                f"Restored step {trainer.step_count:,}: Generate and Probe use it; Resume continues it.",
                gr.Button(visible=False), session.run_id)

    # --------------------------------------------------------------- layout
    def build(self, page: gr.Blocks, using: gr.Markdown) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it (`using` is the page's 'Using:' line)."""
        ctx = self.ctx
        defaults = train_preset("fast")
        idle_status, idle_loss, idle_d = ctx.idle_views()
        with gr.Tab("1 · Train", id="train"):
            ReplayView(ctx).build()  # the pretrained model's recorded training, if it shipped with one
            # On a phone the columns stack; style.css moves the status and live view up under these buttons.
            with gr.Row(equal_height=False, elem_id="train-row"):
                with gr.Column(scale=2, min_width=260, elem_id="settings"):
                    # Chosen before Train is pressed, so above it (on a phone the status still comes right under Train).
                    start = gr.Radio(START_CHOICES, value=SCRATCH, label="Train starts", elem_id="train-start",
                                     visible=ctx.pretrained_path is not None,
                                     info="fine-tuning trains on from the pretrained model: good digits from the "
                                          "first steps, even on a slow CPU")
                    with gr.Row(elem_classes="train-actions"):
                        train_btn = gr.Button("Train", variant="primary", elem_id="train-btn", min_width=80)
                        stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", min_width=80, visible=False)
                    with gr.Row(elem_classes="train-actions"):
                        resume_btn = gr.Button("Resume", elem_id="resume-btn", min_width=80, visible=False)
                        reset_btn = gr.Button("Reset", elem_id="reset-btn", min_width=80, visible=False)
                    restore_btn = gr.Button("Restore your last run", visible=False, elem_id="restore-btn")
                    # The session's run id, kept in the browser so a reload can offer to restore the run: the
                    # tab's own (sessionStorage, survives a reload of that tab) before the browser's latest.
                    last_run = gr.BrowserState(None, storage_key="gancls-last-run", secret=ctx.browser_secret)
                    tab_run = gr.Textbox(visible=False)
                    offered = gr.Textbox(visible=False)  # the run id the Restore button would bring back
                    # Inside the tab, not beside it: gr.Tabs takes any direct child for a tab, and a stray
                    # Timer there made the tab bar draw one tab twice and lose another after a click.
                    put_away_check = gr.Timer(60)
                    note = gr.Markdown(elem_id="train-note")
                    download = gr.DownloadButton("Download your checkpoint", visible=False, elem_id="download-btn")
                    seconds = gr.Number(60, label="Time budget (s)", minimum=0,
                                        info=f"0 = no time limit · this server stops each run after "
                                             f"{ctx.limits.max_run_seconds:g} s at most")
                    epochs = gr.Number(0, label="Epochs", minimum=0, info="0 = no epoch limit")
                    arch = gr.Dropdown(list(ARCHES), value="fast", label="Model size (preset)",
                                       info="fast: laptop CPU · small: tiny · seed: the TF-1 original")
                    device = gr.Dropdown(ctx.device_choices(), value="auto", label="Device", info=ctx.device_note())
                    data_source = gr.Radio(ctx.data_choices(), value=ctx.data_choices()[0][1], label="Training data")
                    with gr.Accordion("More settings", open=False):
                        batch_size = WholeNumber(defaults.batch_size, label="Batch size", precision=0, minimum=2)
                        lr_d = gr.Number(defaults.lr_d, label="D learning rate")
                        lr_g = gr.Number(defaults.lr_g, label="G learning rate")
                        seed = WholeNumber(0, label="Seed", precision=0, minimum=0,
                                           info="this run's random seed: starting weights, data order and noise "
                                                "(on Generate, a seed picks the noise: the handwriting style)")
                        objective = gr.Dropdown(list(OBJECTIVES), value="gan-cls", label="Objective",
                                                info="gan-cls: with wrong-label pairs · plain: without · "
                                                     "seed: as the original")
                        loss = gr.Dropdown(list(LOSSES), value="lsgan", label="Loss")
                        max_steps = WholeNumber(0, label="Max steps", precision=0, minimum=0, info="0 = no step limit")
                with gr.Column(scale=5, min_width=360, elem_id="train-live"):
                    status = gr.HTML(idle_status, elem_id="status")
                    loss_out = loss_plot(idle_loss, elem_id="loss-plot")
                    d_out = d_plot(idle_d, elem_id="d-plot")
                    gr.Markdown(TRAIN_HELP, elem_classes="help")
                with gr.Column(scale=4, min_width=300, elem_id="train-samples"):
                    gr.Markdown(GRID_HELP, elem_classes="help")
                    grid = gr.Image(show_label=False, format="png", interactive=False,
                                    elem_id="train-grid", buttons=["download", "fullscreen"])

        run_outputs = [status, loss_out, d_out, grid, using, download, note]
        # What a lesson link may preset (demo/classroom.py read_lesson), and the views a class run shares.
        self.settings = dict(seconds=seconds, arch=arch, objective=objective, seed=seed, batch_size=batch_size,
                             lr_d=lr_d, lr_g=lr_g)
        self.controls = [train_btn, stop_btn, resume_btn, reset_btn, restore_btn]
        self.status = status
        quick = dict(api_visibility="private", concurrency_limit=None, show_progress="hidden")
        # A failed action shows its message in the toast only: no component shows Gradio's progress, so none
        # gets an error badge; the status box shows the run's progress. (Gradio's progress timer re-laid out
        # the page every frame of the run: CPU that a browser on the training machine takes from training.)
        # Runs wait in the store's training line, not in Gradio's queue (shared with Generate and Probe).
        train_run = dict(concurrency_id="train-line", concurrency_limit=None, show_progress="hidden")

        def settled(event: Any) -> Any:
            # Every run action ends by deriving the buttons (and a leftover 'waiting' status) from the state,
            # whether it worked or failed (Gradio runs .then only after success, .failure only after an error).
            event.failure(self.settle, status, [status, *self.controls], **quick)
            return event.then(self.settle, status, [status, *self.controls], **quick)

        def remembered(event: Any) -> Any:
            return event.then(self.remember, None, [last_run, tab_run], **quick).then(
                None, tab_run, None, js="(id) => { if (id) sessionStorage.setItem('gancls-tab-run', id); return []; }")

        for btn, fn, inputs, name in (
                (train_btn, self.train, [device, data_source, seconds, epochs, max_steps, arch, batch_size, lr_d,
                                         lr_g, seed, objective, loss, start], "train"),
                (resume_btn, self.resume, [seconds, epochs, max_steps], "resume")):
            started = btn.click(self.begin, None, [status, *self.controls], **quick)
            remembered(started)
            settled(started.then(fn, inputs, run_outputs, api_name=name, **train_run))
        stop_btn.click(self.stop, None, note, api_name="stop", concurrency_limit=None, show_progress="hidden")
        self.reset_event = settled(reset_btn.click(self.reset, None, run_outputs, api_name="reset",
                                                   concurrency_limit=None, show_progress_on=[note]))
        download.click(self.download, None, download, api_name="download", concurrency_limit=None).then(
            None, download, download, js=SAVE_DOWNLOAD_JS, api_visibility="private")
        arch.input(self.preset, arch, [batch_size, lr_d, lr_g], api_visibility="private")
        restored = restore_btn.click(self.restore, offered, [*run_outputs, restore_btn, last_run], api_name="restore",
                                     concurrency_limit=2, show_progress_on=[note])
        remembered(settled(restored))
        page.load(None, None, tab_run, js="() => sessionStorage.getItem('gancls-tab-run') || ''").then(
            self.offer, [tab_run, last_run], [restore_btn, offered], **quick)
        put_away_check.tick(self.put_away, None, [using, restore_btn, offered], **quick)

