"""The pretrained model's recorded training, replayed on the Train tab: its curves, fixed-noise grid and judge
figures step by step, with a slider to scrub and Play to watch it in about 30 s.

The recording (`replay.npz` beside the pretrained checkpoint, gancls/replay.py) is the same for every visitor:
it is read once, and each frame is drawn once and shared. Without that file the section is not shown.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
import torch

from gancls.draw import labelled_grid, save_png_fast
from gancls.errors import UserError
from gancls.judge import judge_predict
from gancls.replay import Replay, load_replay, replay_path

from .context import AppContext
from .curves import LiveCurves
from .ui import (
    D_CURVES,
    LOSS_CURVES,
    curves,
    d_plot,
    loss_plot,
    start_curves,
    user_errors,
)

PLAY_SECONDS = 30.0  # from the first frame to the last
FRAME_SECONDS = (0.1, 1.0)  # shortest and longest time one frame stays up while playing
WATCH = "▶ Watch the pretrained model learn (its recorded training, ~30 s)"
REPLAY_HELP = """**The pretrained model's own training, as it was recorded.** The grid uses the same noise at every
frame (row *r* = label *r*), so you see each handwriting style go from noise to digits. Drag the slider to go
back and forth; the curves grow up to the step shown. Nothing trains here: your own runs use the controls
below."""
SHOW_JS = "() => { document.getElementById('replay')?.scrollIntoView({block: 'start'}); return []; }"  # phones
JUDGE_CURVE = "judge: label accuracy"
JUDGE_COLOURS = {JUDGE_CURVE: "#0072B2"}


@dataclass(frozen=True)
class Frame:
    """What the replay shows at one recorded step."""

    grid: str  # PNG path
    loss: pd.DataFrame
    d: pd.DataFrame
    judge: pd.DataFrame
    caption: str


def judged(replay: Replay, step: int) -> list[dict[str, Any]]:
    """The recording's judge evaluations up to `step` (those with a label accuracy)."""
    return [e for e in replay.evals if e.get("step", 0) <= step and e.get("label_accuracy") is not None]


def tables(replay: Replay, step: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The loss, D-output and judge plots' tables up to `step` (the curves never empty: see ui.start_curves)."""
    seen = [m for m in replay.metrics if m.get("step", 0) <= step] or replay.metrics[:1]
    evals = judged(replay, step)
    judge = pd.DataFrame({"step": pd.Series([int(e["step"]) for e in evals], dtype="int64"),
                          "value": pd.Series([float(e["label_accuracy"]) for e in evals], dtype="float64"),
                          "curve": pd.Series([JUDGE_CURVE] * len(evals), dtype="object")})
    return curves(seen, LOSS_CURVES), curves(seen, D_CURVES), judge


class ReplayView:
    """The recorded training of the app's pretrained model, read on first use and shared by all sessions."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.directory = ctx.pretrained_path.parent if ctx.pretrained_path is not None else None
        self._replay: Replay | None = None
        self._frames: dict[int, Frame] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """Whether the pretrained model came with a recording (else the section is not built)."""
        return self.directory is not None and replay_path(self.directory).is_file()

    def replay(self) -> Replay:
        """The recording (read once; a damaged file raises ReplayError, a UserError with a plain message)."""
        with self._lock:
            if self._replay is None:
                replay = load_replay(self.directory) if self.directory is not None else None
                if replay is None:
                    raise UserError("the pretrained model has no recorded training on this server")
                self._replay = replay
            return self._replay

    def frame(self, index: Any) -> Frame:
        """Frame `index` (clamped to the recording), drawn on first use."""
        replay = self.replay()
        i = min(max(int(index or 0), 0), len(replay.steps) - 1)
        with self._lock:
            if i not in self._frames:
                self._frames[i] = self._draw(replay, i)
            return self._frames[i]

    def _draw(self, replay: Replay, i: int) -> Frame:
        step, images = replay.steps[i], replay.grids[i]
        rows = len(images) // replay.cols
        folder = self.ctx.store.root / "replay"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".frame{i:04d}.png"
        save_png_fast(labelled_grid(images, range(rows), replay.cols, scale=2), tmp)
        path = tmp.replace(folder / f"frame{i:04d}.png")  # whole or absent: another visitor may be reading it
        return Frame(str(path), *tables(replay, step), self._caption(replay, i, judged(replay, step)))

    def _caption(self, replay: Replay, i: int, evals: list[dict[str, Any]]) -> str:
        last = replay.steps[-1]
        step = replay.steps[i]
        parts = [f"**Step {step:,}** of {last:,} (frame {i + 1} of {len(replay.steps)})"]
        if evals:
            e = evals[-1]
            parts.append(f"judge: **{100 * e['label_accuracy']:.0f} %** of the model's digits read as the label "
                         f"asked for (at step {int(e['step']):,})")
        judge = self.ctx.judge()
        rows = len(replay.grids[i]) // replay.cols
        if judge is not None and rows == 10:  # the judge reads digits 0-9, one row per label
            want = torch.arange(10).repeat_interleave(replay.cols)
            right = int((judge_predict(judge, replay.grids[i]).predictions == want).sum())
            parts.append(f"in this grid: {right} of {len(want)}")
        return " · ".join(parts)

    # ------------------------------------------------------------ handlers
    def values(self, index: Any) -> tuple:
        """(slider, grid, loss plot, D plot, judge plot, caption) for frame `index`."""
        f, i = self.frame(index), min(max(int(index or 0), 0), len(self.replay().steps) - 1)
        return i, f.grid, f.loss, f.d, f.judge, f.caption  # (before the first evaluation the judge plot is empty)

    @user_errors
    def open(self) -> tuple:
        """Show the section at the first frame (the recording is read on the first click)."""
        return (gr.Column(visible=True), *self.values(0))

    @user_errors
    def show(self, index: float) -> tuple:
        """The frame the slider points at."""
        return self.values(index)

    @user_errors
    async def play(self, index: float) -> AsyncIterator[tuple]:
        """From the slider's frame (from the start if it is at the end) to the last, in about PLAY_SECONDS.

        Waits on the event loop, not in a worker thread: a class pressing Play at once must not hold the
        threads Generate and Probe run on. Each frame is fetched on a thread (its first drawing takes a moment).
        """
        n = len(self.replay().steps)
        start = 0 if int(index or 0) >= n - 1 else int(index or 0)
        pause = min(max(PLAY_SECONDS / n, FRAME_SECONDS[0]), FRAME_SECONDS[1])
        for i in range(start, n):
            t0 = time.monotonic()
            yield await asyncio.to_thread(self.values, i)
            if i < n - 1:  # the event ends with the last frame, not a pause after it
                await asyncio.sleep(max(0.0, pause - (time.monotonic() - t0)))

    # -------------------------------------------------------------- layout
    def build(self) -> None:
        """The Watch button and the (hidden) replay section, inside the Train tab; nothing without a recording."""
        if not self.available:
            return
        quick = {"api_visibility": "private", "concurrency_limit": None, "show_progress": "hidden"}
        watch = gr.Button(WATCH, elem_id="replay-btn", size="md")
        with gr.Column(visible=False, elem_id="replay") as panel:
            with gr.Row(elem_classes="train-actions"):
                play = gr.Button("▶ Play", variant="primary", elem_id="replay-play", min_width=80)
                pause = gr.Button("Pause", elem_id="replay-pause", min_width=80)
                close = gr.Button("Close", elem_id="replay-close", min_width=80)
            frames, last_step, (all_loss, all_d, all_judge) = self._size()
            slider = gr.Slider(0, max(frames - 1, 1), value=0, step=1, label="Recorded frame (drag to scrub)",
                               elem_id="replay-slider")
            caption = gr.Markdown(elem_id="replay-caption")
            with gr.Row(equal_height=False):
                with gr.Column(scale=4, min_width=300):
                    grid = gr.Image(show_label=False, format="png", interactive=False, elem_id="replay-grid",
                                    buttons=["fullscreen"])
                with gr.Column(scale=5, min_width=300):
                    x_lim = [0, max(last_step, 1)]
                    loss = loss_plot(all_loss, "Losses (recorded)", height=220, x_lim=x_lim, elem_id="replay-loss")
                    d_out = d_plot(all_d, "Discriminator outputs (recorded)", height=220, x_lim=x_lim,
                                   elem_id="replay-d")
                    judge = LiveCurves(all_judge, title="Judge: label accuracy of G's digits", y_title="label accuracy",
                                       colours=JUDGE_COLOURS, x_lim=x_lim, y_lim=(0, 1), height=200,
                                       visible=not all_judge.empty, elem_id="replay-judge")
            gr.Markdown(REPLAY_HELP, elem_classes="help")
        frame_outputs = [slider, grid, loss, d_out, judge, caption]
        opened = watch.click(self.open, None, [panel, *frame_outputs], api_name="replay_open",
                             concurrency_limit=None, show_progress="hidden")
        opened.then(None, js=SHOW_JS, api_visibility="private")
        playing = opened.then(self.play, slider, frame_outputs, api_name="replay_play", concurrency_limit=None,
                              show_progress="hidden")
        replay_again = play.click(self.play, slider, frame_outputs, concurrency_limit=None, show_progress="hidden",
                                  api_visibility="private")
        stop_playing = [playing, replay_again]
        pause.click(None, None, None, cancels=stop_playing, api_visibility="private")
        slider.input(self.show, slider, frame_outputs, api_name="replay_frame", cancels=stop_playing,
                     concurrency_limit=None, show_progress="hidden")
        close.click(lambda: gr.Column(visible=False), None, panel, cancels=stop_playing, **quick)

    def _size(self) -> tuple[int, int, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
        # (frames, last step, the whole recording's tables), read when the page is built; a damaged file
        # says so when Watch is clicked.
        try:
            replay = self.replay()
            self.frame(0)  # drawn now (and the judge loaded), so the first click only sends it
        except (UserError, OSError):  # a damaged or unreadable recording; a bug still fails the build
            empty = Replay(steps=[0], grids=[], cols=1, metrics=[])
            return 1, 1, (*start_curves([]), tables(empty, 0)[2])
        return len(replay.steps), replay.steps[-1], tables(replay, replay.steps[-1])
