"""The page: the intro, the 'Using:' line, the presenter-view toggle and the nine tabs in order. Each tab lays itself out and
wires its own events (demo/tabs/); this file only puts them together."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .context import AppContext
from .tabs.ablation import AblationTab
from .tabs.classroom import ClassTab
from .tabs.dview import DViewTab
from .tabs.export import ExportTab
from .tabs.generate import GenerateTab
from .tabs.handwriting import HandwritingTab
from .tabs.probe import ProbeTab
from .tabs.style import StyleTab
from .tabs.train import TrainTab
from .ui import PRIVATE, apply_error_contract, session_hash, using_text

A11Y_JS = Path(__file__).with_name("a11y.js")
# The presenter view is a class on <body> (style.css enlarges type, grid and plots and hides the settings).
PRESENT_JS = "(on) => { document.body.classList.toggle('gc-present', !!on); return []; }"
INTRO = """# GAN-CLS: a GAN that draws the digit you ask for
A **generator** G turns random noise plus a label (0–9) into a handwritten digit; a **matching-aware
discriminator** D looks at an image *and* a label and scores how likely it is to be a real digit that
shows that label. D learns from three kinds of pairs — real digit with its right label, generated digit
with its label, and real digit with a *wrong* label (GAN-CLS, Reed et al. 2016) — so G must draw the
right digit, not just a plausible one. **Train** a model live, **Generate** digits with it, and
**Probe** what its discriminator believes."""


def build_demo(ctx: AppContext) -> gr.Blocks:
    """The Gradio Blocks app over a loaded AppContext."""
    with gr.Blocks(title="GAN-CLS digits", analytics_enabled=False, delete_cache=(600, 1800)) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        using = gr.Markdown(using_text(None, ctx.pretrained_note), elem_id="using")
        present = gr.Checkbox(False, label="Presenter view (for a projector: larger type, grid and plots; no settings)",
                              elem_id="present-toggle", container=False)
        lesson_note = gr.Markdown(visible=False, elem_id="lesson-note")
        train, export, classroom = TrainTab(ctx), ExportTab(ctx), ClassTab(ctx)
        with gr.Tabs(overflow_behavior="wrap"):  # every tab reachable on a phone, no "•••" menu
            train.build(demo, using)
            GenerateTab(ctx).build()
            ProbeTab(ctx).build()
            AblationTab(ctx).build()
            DViewTab(ctx).build()
            StyleTab(ctx).build()
            export.build(using)
            HandwritingTab(ctx).build()
            classroom.build(using)
        # The run state changes on one tab and shows on another: an upload makes a new run (Train's status
        # and buttons follow), and Reset leaves nothing of the old run on the Timeline tab.
        export.uploaded.then(train.show_state, None, [train.status, *train.controls], **PRIVATE)
        train.reset_event.then(export.clear, None, export.cleared, **PRIVATE)
        present.change(None, present, None, js=PRESENT_JS, **PRIVATE)
        classroom.wire_lesson(demo, present, lesson_note, train.settings)

        def show_using(request: gr.Request) -> str:
            """Which model Generate and Probe use for this session."""
            return ctx.using(ctx.session(request))

        def unload(request: gr.Request) -> None:
            """The tab was closed: stop its training; its checkpoint is kept 24 h to restore, the rest deleted."""
            ctx.store.drop(session_hash(request))

        demo.load(show_using, None, using, api_name="using", concurrency_limit=None)
        demo.load(None, js=A11Y_JS.read_text())  # names for controls Gradio leaves unnamed (demo/a11y.js)
        demo.unload(unload)
    apply_error_contract(demo)  # every handler, whichever tab wired it: UserError shown, anything else logged
    return demo
