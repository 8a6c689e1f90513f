"""Tab 7 · Timeline & export: the run's fixed-noise grids as a GIF, its metric history as CSV, and
checkpoint upload through the safe loader."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from gancls.checkpoint import CheckpointError, load_checkpoint
from gancls.errors import UserError
from gancls.teach import history_csv, timeline_animation
from gancls.train import Trainer

from ..context import AppContext
from ..limits import MAX_UPLOAD_MB
from ..runstate import UPLOAD_DIR, data_for_run, grids_of
from ..session import TIMELINE_NAME, Session
from ..ui import INFER, user_errors

UPLOAD_MAX_BYTES = MAX_UPLOAD_MB * 2**20  # a `seed` run with its optimiser state is about 151 MB
TIMELINE_HELP = """**Training as a film.** During a Train run the app records the fixed-noise grid every few
seconds; here it becomes an animated GIF (one frame per grid). The metric history (losses, D outputs, speed,
per update) downloads as CSV for a spreadsheet. **Upload** a gancls checkpoint (.safetensors, e.g. one you
downloaded in the Train tab) to use it in Generate, Probe and these tabs; it is checked before anything changes."""


def plain_upload_error(err: CheckpointError, file: str, name: str) -> CheckpointError:
    """The loader's message for an uploaded file, naming it as the visitor knows it (not the server's temp
    path) and without the loader's byte counts."""
    text = str(err).replace(str(Path(file).resolve()), name).replace(str(file), name)
    if text.startswith(name):  # "uploaded file x.safetensors: ..." (the message is capitalised: keep the name as is)
        text = "uploaded file " + text
    text = re.sub(r" \(header of \d+ bytes in a \d+-byte file\)", " (cut short, or another kind of file)", text)
    text = re.sub(r" \(\d+ bytes, \d+ expected\)", "", text)
    return CheckpointError(text)


def _trainer(session: Session, what: str) -> Trainer:
    if session.trainer is None:
        raise UserError(f"no training run in this session yet: press Train in the Train tab first ({what} "
                        "records your own run)")
    return session.trainer


class ExportTab:
    """The Timeline & export tab's endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def timeline(self, fps: float, request: gr.Request) -> tuple[str, str]:
        """The fixed-noise grids of this session's run as an animated GIF (shown, and as a file)."""
        session = self.ctx.session(request)
        trainer = _trainer(session, "the timeline")
        path = str(timeline_animation(grids_of(trainer), session.run_dir / "gancls_timeline.gif",
                                      fps=fps, scale=2))
        return path, path

    @user_errors
    def history_csv(self, request: gr.Request) -> str:
        """The metric history of this session's run as a CSV file."""
        session = self.ctx.session(request)
        trainer = _trainer(session, "the history")
        return str(history_csv(list(trainer.history), session.run_dir / "gancls_history.csv"))

    @user_errors
    def upload_checkpoint(self, file: str | None, request: gr.Request) -> tuple[str, str]:
        """Load an uploaded checkpoint through the safe loader; a good one becomes this session's model."""
        if not file:
            raise UserError("no file: choose a gancls checkpoint (.safetensors) to upload first")
        session = self.ctx.session(request)
        name = Path(file).name
        try:
            ckpt = load_checkpoint(file, max_bytes=UPLOAD_MAX_BYTES)  # CheckpointError (a UserError) if unusable
        except CheckpointError as err:
            raise plain_upload_error(err, file, name) from None
        with session.lock:  # no run may start while the upload replaces this one
            session.check_idle("upload")
            session.run_dir.mkdir(parents=True, exist_ok=True)
            kept = session.run_dir / UPLOAD_DIR / "gancls.safetensors"
            kept.parent.mkdir(exist_ok=True)
            shutil.copyfile(ckpt.path, kept)  # Download hands back the model in use
            (session.run_dir / TIMELINE_NAME).unlink(missing_ok=True)  # the old run's grids are not this one's
            # The upload replaces the session's run; with optimiser state it becomes a run Resume continues.
            trainer, why_not = self._resumable(kept, ckpt)
            session.use_upload(trainer, ckpt.model.cpu().eval(), ckpt.step, kept)
        train_cfg = ckpt.meta.get("train_config")
        objective = train_cfg.get("objective") if isinstance(train_cfg, dict) else None
        message = (f"Loaded **{html.escape(name)}**: a {ckpt.model.cfg.arch} model trained for {ckpt.step:,} steps"
                   + (f" with the {html.escape(str(objective))} objective. " if objective else ". ")
                   + "Generate, Probe and the teaching tabs now use it; Reset goes back to the pretrained model. "
                   + ("Resume (Train tab) continues training it." if trainer is not None else
                      f"It cannot be resumed: {why_not}."))
        return message, self.ctx.using(session)

    def _resumable(self, path: Path, ckpt: Any) -> tuple[Trainer | None, str]:
        """A trainer continuing the uploaded run, or None and the plain reason why it cannot."""
        if not ckpt.train_state:
            return None, "it holds weights only (no optimiser state); Train starts a fresh run"
        train_cfg = ckpt.meta.get("train_config")
        train_cfg = train_cfg if isinstance(train_cfg, dict) else {}
        n_train, holdout = ckpt.meta.get("n_train", -1), train_cfg.get("holdout", 0)
        if type(n_train) is not int or type(holdout) is not int:
            return None, "its metadata does not say which training images it used"
        too_big = self.ctx.limits.batch_refusal(train_cfg.get("batch_size"))
        if too_big:
            return None, too_big
        try:
            data = data_for_run(self.ctx, n_train, holdout)
            return Trainer.resume(path, data, device=self.ctx.train_device("auto"), run_dir=path.parent.parent), ""
        except UserError as err:
            return None, str(err).replace(str(path), path.name)

    @user_errors
    def clear(self) -> tuple:
        """After Reset: nothing of the old run stays on this tab."""
        return None, None, None, "", ""

    def build(self, using: gr.Markdown) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it (`using` is the page's 'Using:' line)."""
        with gr.Tab("7 · Timeline & export", id="timeline"):
            gr.Markdown(TIMELINE_HELP, elem_classes="help")
            with gr.Row(equal_height=False):
                with gr.Column(scale=4):
                    with gr.Row():
                        fps = gr.Slider(1, 20, value=4, step=1, label="Frames per second", min_width=160)
                        gif_btn = gr.Button("Make the animation", variant="primary", elem_id="gif-btn")
                    gif_image = gr.Image(show_label=False, interactive=False, elem_id="gif-image", elem_classes="digits")
                    gif_file = gr.File(label="Animation (GIF)", interactive=False, elem_id="gif-file")
                    export_note = gr.Markdown(elem_id="export-note")
                with gr.Column(scale=3):
                    csv_btn = gr.Button("Metric history as CSV", elem_id="csv-btn")
                    csv_file = gr.File(label="History (CSV)", interactive=False, elem_id="csv-file")
                    upload = gr.File(label="Upload a checkpoint (.safetensors)", file_types=[".safetensors"],
                                     type="filepath", elem_id="ckpt-upload")
                    upload_btn = gr.Button("Use this checkpoint", elem_id="upload-btn")
                    upload_note = gr.Markdown(elem_id="upload-note")
        # Errors show in the toast and on the note only, never as badges on the GIF box or the 'Using' line.
        gif_btn.click(self.timeline, fps, [gif_image, gif_file], api_name="timeline", show_progress_on=[export_note],
                      **INFER)
        csv_btn.click(self.history_csv, None, csv_file, api_name="history_csv", show_progress_on=[export_note],
                      **INFER)
        self.uploaded = upload_btn.click(self.upload_checkpoint, upload, [upload_note, using],
                                         api_name="upload_checkpoint", show_progress_on=[upload_note], **INFER)
        self.cleared = [gif_image, gif_file, csv_file, upload_note, export_note]
