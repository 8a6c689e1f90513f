"""Tab 9 · Class: share your run under a class code, or watch and use someone else's; lesson links.

Layout and handlers side by side. Watching is an async stream (no worker thread per watcher): it
waits for the owner's next published update (demo/classroom.py) and relays it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

from gancls.config import train_preset
from gancls.errors import UserError

from ..classroom import Frame, SharedRun, kept_grid, read_lesson
from ..context import AppContext
from ..ui import PRIVATE, d_plot, loss_plot, status_html, user_errors

WATCH_EVERY = 1.5  # seconds between two updates sent to one watcher (the owner publishes every UPDATE_EVERY)
WATCH_POLL = 0.2  # how often a watcher looks for a new update
WATCH_HOURS = 3.0  # a page stops following a class run after this long (reload to follow again)
CLASS_HELP = """**A whole class on one server.** The person training presses **Share my run** and puts the
code (or the link) on the projector. Everyone else enters the code and presses **Watch**: their page
follows that run live, without a training slot, and their **Generate** and **Probe** (with their own
drawings too) use its latest model. Watchers cannot stop, reset, resume or download it. Train or
Reset on your own page goes back to your own model."""
LINK_JS = """(code) => code ? window.location.origin + window.location.pathname + "?watch=" + code : "" """
# A lesson link opens its tab by clicking the tab's button, not by sending the page's gr.Tabs an update:
# Gradio keeps every component an event has read or written for the page's life and, on each later streamed
# message (every live update of a run), refreshes its loading status and re-reads every mounted component
# inside it, which for the gr.Tabs is the whole page.
OPEN_TAB_JS = """(tab) => {
    if (tab) document.querySelector(`button[role=tab][data-tab-id="${tab}"]`)?.click();
    return [];
}"""
LINK_HELP = ("Lesson links preset the page: `?seconds=30&preset=small&objective=plain&seed=3&tab=probe`, "
             "`&present=1` for the presenter view, `?watch=CODE` to follow a class run.")


class ClassTab:
    """The Class tab's endpoints (share, join, watch) and the lesson-link reader, bound to one AppContext."""

    def __init__(self, ctx: AppContext, watch_every: float = WATCH_EVERY):
        self.ctx, self.watch_every = ctx, watch_every
        self._packs: weakref.WeakKeyDictionary[SharedRun, tuple] = weakref.WeakKeyDictionary()

    @user_errors
    def share(self, request: gr.Request) -> str:
        """Share the caller's run: returns its class code (the same code on every call while the page lives)."""
        session = self.ctx.session(request)
        shared = self.ctx.classroom.share(session)
        # A run that trains or waits in line publishes its own updates; else watchers get it as it stands.
        if shared.frame() is None and not session.running:
            self._publish_idle(session, shared)
        return shared.code

    @user_errors
    def join(self, code: str, request: gr.Request) -> str:
        """From now on this session's Generate and Probe use the class run's latest model; returns the 'Using:' line."""
        shared = self.ctx.classroom.find(code)
        session = self.ctx.session(request)
        if shared.owner is session:
            raise UserError("this is your own class code: your page already uses your run")
        session.join(shared)
        return self.ctx.using(session)

    async def watch(self, code: str) -> AsyncIterator[tuple]:
        """Stream the class run's view (status, both curve plots, the fixed-noise grid) until the run ends."""
        async for out in self._frames(self._find(code), follow=False):
            yield out

    async def follow(self, code: str) -> AsyncIterator[tuple]:
        """The page's watch: follows the class run from one training to the next while its code is valid."""
        if isinstance(code, str) and code.strip():
            async for out in self._frames(self._find(code), follow=True):
                yield out

    def _find(self, code: Any) -> SharedRun:
        try:
            return self.ctx.classroom.find(code)
        except UserError as e:
            text = str(e)
            raise gr.Error(text[:1].upper() + text[1:], print_exception=False) from None

    async def _frames(self, shared: SharedRun, follow: bool) -> AsyncIterator[tuple]:
        sent = grid_sent = -1
        deadline, next_at = time.monotonic() + WATCH_HOURS * 3600, 0.0
        while time.monotonic() < deadline:
            if shared.ended:
                message = (f"The page that shared class run {shared.code} has closed. Generate and Probe keep its "
                           "last model.")
                yield status_html(state="idle", message=message), gr.skip(), gr.skip(), gr.skip()
                return
            now = time.monotonic()
            if now < next_at:  # sent one lately: nothing to look at before the next is due
                await asyncio.sleep(next_at - now)
                continue
            frame = shared.frame()
            if frame is None or frame.version == sent:
                await asyncio.sleep(WATCH_POLL)
                continue
            grid = kept_grid(frame.grid) if frame.grid_version != grid_sent else None
            status, loss, d = self._packed(shared, frame)
            yield status, loss, d, {"path": grid, "meta": {"_type": "gradio.FileData"}} if grid else gr.skip()
            sent, grid_sent = frame.version, frame.grid_version if grid is not None else grid_sent
            next_at = time.monotonic() + self.watch_every
            if not frame.running and not follow:
                return

    def _packed(self, shared: SharedRun, frame: Frame) -> tuple[str, dict, dict]:
        """(status box, loss plot, D plot) of `frame` as the page receives them: built once per frame for all
        its watchers, which are sent them without Gradio's per-watcher postprocessing (postprocess=False)."""
        packed = self._packs.get(shared)
        if packed is None or packed[0] != frame.version:
            if frame.running:
                message = (f"Live: class run {shared.code}. A page watching this code uses its latest model for "
                           "Generate and Probe.")
            else:
                message = f"Class run {shared.code} is not training now; Generate and Probe use its latest model."
            status = status_html(state=frame.state, message=message, progress=frame.progress, stats=frame.stats)
            _, loss_out, d_out, _ = self.views
            packed = (frame.version, status, loss_out.postprocess(frame.loss), d_out.postprocess(frame.d))
            self._packs[shared] = packed
        return packed[1:]

    def _publish_idle(self, session: Any, shared: SharedRun) -> None:
        """A first view of a run shared while it is not training: its curves and its last grid."""
        trainer = session.trainer
        grid = session.run_dir / "live_grid.png"
        shared.publish(state="done", stats={"step": f"{session.model_steps:,}"}, progress=None, message="",
                       history=trainer.history if trainer is not None else [],
                       grid=str(grid) if grid.is_file() else None, running=False)

    # ------------------------------------------------------------ lesson links
    def lesson(self, request: gr.Request) -> tuple:
        """On page load: the settings, tab, presenter view and class code a lesson link asks for, and a note
        on anything it asked for that was ignored."""
        lesson = read_lesson(dict(getattr(request, "query_params", None) or {}), self.ctx.limits.max_run_seconds)
        skip = gr.skip()
        preset = train_preset(lesson.preset) if lesson.preset else None
        tab = lesson.tab or ("class" if lesson.watch else None)
        note = "\n".join(f"- {n}" for n in lesson.notes)
        return (tab or "",
                lesson.present if lesson.present else skip,
                lesson.watch or skip,
                gr.Markdown(f"**Lesson link:** some settings were ignored\n{note}", visible=True) if note else skip,
                lesson.seconds if lesson.seconds is not None else skip,
                lesson.preset or skip,
                lesson.objective or skip,
                lesson.seed if lesson.seed is not None else skip,
                preset.batch_size if preset else skip, preset.lr_d if preset else skip,
                preset.lr_g if preset else skip)

    def join_from_link(self, code: str, request: gr.Request) -> Any:
        """After a ?watch=CODE link: join that class run (nothing without a code)."""
        if not (isinstance(code, str) and code.strip()):
            return gr.skip()
        return self.join(code, request)

    # ------------------------------------------------------------------ layout
    def build(self, using: gr.Markdown) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it (`using` is the page's 'Using:' line)."""
        _, idle_loss, idle_d = self.ctx.idle_views()
        with gr.Tab("9 · Class", id="class"):
            gr.Markdown(CLASS_HELP + "\n\n" + LINK_HELP, elem_classes="help")
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=260, elem_id="class-controls"):
                    share_btn = gr.Button("Share my run", variant="primary", elem_id="share-btn")
                    my_code = gr.Textbox(label="Your class code", interactive=False, elem_id="share-code")
                    link = gr.Textbox(label="Link to put on the projector", interactive=False, elem_id="share-link",
                                      buttons=["copy"])
                    code = gr.Textbox(label="Class code to watch", max_length=20, elem_id="watch-code",
                                      placeholder="e.g. K7QM2X")
                    watch_btn = gr.Button("Watch", elem_id="watch-btn")
                with gr.Column(scale=5, min_width=360):
                    status = gr.HTML(status_html(state="idle", message="Enter a class code and press Watch."),
                                     elem_id="watch-status")
                    loss_out = loss_plot(idle_loss, elem_id="watch-loss")
                    d_out = d_plot(idle_d, elem_id="watch-d")
                with gr.Column(scale=4, min_width=300):
                    grid = gr.Image(show_label=False, format="png", interactive=False, elem_id="watch-grid",
                                    buttons=["fullscreen"])
        self.code = code
        self.views = [status, loss_out, d_out, grid]
        self.using = using
        quick = {"concurrency_limit": None, "show_progress": "hidden"}
        share_btn.click(self.share, None, my_code, api_name="share", **quick).then(
            None, my_code, link, js=LINK_JS, **PRIVATE)
        # Watchers wait on the event loop, not on worker threads, so they need no concurrency limit.
        # Their updates come ready to send (_packed), so Gradio does not postprocess them for each watcher.
        watching = {"concurrency_id": "watch", "concurrency_limit": None, "show_progress": "hidden",
                    "postprocess": False}
        self.watch_btn = watch_btn
        joined = watch_btn.click(self.join, code, using, api_name="join", **quick)
        self.watched = joined.then(self.watch, code, self.views, api_name="watch", **watching)
        self.following = self.watched.then(self.follow, code, self.views, **watching, **PRIVATE)

    def wire_lesson(self, page: gr.Blocks, present: gr.Checkbox, note: gr.Markdown, settings: dict[str, Any]) -> None:
        """On load: apply a lesson link (settings, tab, presenter view) and follow a ?watch=CODE class run."""
        order = ("seconds", "arch", "objective", "seed", "batch_size", "lr_d", "lr_g")
        tab = gr.Textbox(visible=False)  # the id of the tab to open ("" for none)
        outputs = [tab, present, self.code, note, *(settings[k] for k in order)]
        quick = dict(concurrency_limit=None, show_progress="hidden", **PRIVATE)
        lesson = page.load(self.lesson, None, outputs, **quick)
        lesson.then(None, tab, None, js=OPEN_TAB_JS, **PRIVATE)
        linked = lesson.then(
            self.join_from_link, self.code, self.using, **quick).then(
            self.follow, self.code, self.views, concurrency_id="watch", concurrency_limit=None,
            show_progress="hidden", postprocess=False, **PRIVATE)
        # Watch again (another code): the page stops following the previous one first.
        self.watch_btn.click(None, None, None, cancels=[self.watched, self.following, linked], **PRIVATE)
