"""Tab 6 · Style vs label: one noise vector per row across labels; label and noise interpolation."""

from __future__ import annotations

import gradio as gr
import numpy as np

from gancls.draw import strip_image, with_column_labels
from gancls.teach import label_interpolation, noise_interpolation, style_grid

from ..context import AppContext
from ..ui import INFER, png, user_errors

STYLE_HELP = """**Style versus label.** G gets two inputs: a label and a random noise vector *z*. In the grid each
**row keeps one z** and each **column is a label**: if G has learned to separate them, a row keeps its
handwriting (slant, thickness, width) while the digit changes. The strips below move smoothly between two labels
(same z, mixed label code) or between two z's (same label). Same seed, same pictures."""


class StyleTab:
    """The Style vs label tab's endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def style_grid(self, n_styles: float, seed: float, request: gr.Request) -> str:
        """Rows: one noise vector (a handwriting style) each; columns: labels 0-9."""
        session = self.ctx.session(request)
        images = style_grid(self.ctx.model_for(session), n_styles, list(range(10)), seed)  # [S, 10, 28, 28]
        grid = with_column_labels(images, range(10), scale=2, row_labels=[f"z{r + 1}" for r in range(len(images))])
        return png(session, grid, "style_grid.png")

    @user_errors
    def label_interpolation(self, start: float, end: float, steps: float, seed: float, request: gr.Request) -> str:
        """One noise vector, the label code sliding from one digit to another."""
        session = self.ctx.session(request)
        strip = label_interpolation(self.ctx.model_for(session), start, end, steps, seed)  # [T, 28, 28]
        t = np.linspace(0, 1, len(strip))
        captions = [f"{int(start)}" if v == 0 else f"{int(end)}" if v == 1 else f"{v:.2f}" for v in t]
        return png(session, strip_image(strip, captions), "label_interpolation.png")

    @user_errors
    def noise_interpolation(self, label: float, seed_a: float, seed_b: float, steps: float,
                            request: gr.Request) -> str:
        """One label, the noise moving from one seed's vector to another's."""
        session = self.ctx.session(request)
        strip = noise_interpolation(self.ctx.model_for(session), label, steps, seed_a, seed_b)  # [T, 28, 28]
        t = np.linspace(0, 1, len(strip))
        captions = ["z(a)" if v == 0 else "z(b)" if v == 1 else f"{v:.2f}" for v in t]
        return png(session, strip_image(strip, captions), "noise_interpolation.png")

    def build(self) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it."""
        digits = [(str(k), k) for k in range(10)]
        with gr.Tab("6 · Style vs label", id="style"):
            gr.Markdown(STYLE_HELP, elem_classes="help")
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=240):
                    n_styles = gr.Slider(1, 16, value=6, step=1, label="Noise vectors (rows)", elem_id="style-rows")
                    style_seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="style-seed")
                    style_btn = gr.Button("Draw the grid", variant="primary", elem_id="style-btn")
                with gr.Column(scale=6):
                    style_image = gr.Image(show_label=False, format="png", interactive=False, elem_id="style-grid",
                                           elem_classes="digits", buttons=["download", "fullscreen"])
            with gr.Row(equal_height=False):
                with gr.Column(min_width=300):
                    gr.Markdown("**Between two labels** (same noise vector)")
                    with gr.Row():
                        lab_a = gr.Dropdown(digits, value=1, label="From", min_width=80)
                        lab_b = gr.Dropdown(digits, value=7, label="To", min_width=80)
                        lab_steps = gr.Slider(2, 16, value=9, step=1, label="Steps", min_width=120)
                        lab_seed = gr.Number(0, label="Seed", precision=0, minimum=0, min_width=80)
                    lab_btn = gr.Button("Interpolate labels", elem_id="lab-btn")
                    lab_image = gr.Image(show_label=False, format="png", interactive=False, elem_id="lab-strip",
                                         elem_classes="digits", height=170, buttons=["download"])
                with gr.Column(min_width=300):
                    gr.Markdown("**Between two noise vectors** (same label)")
                    with gr.Row():
                        noise_label = gr.Dropdown(digits, value=3, label="Label", min_width=80)
                        seed_a = gr.Number(0, label="Seed of z(a)", precision=0, minimum=0, min_width=80)
                        seed_b = gr.Number(1, label="Seed of z(b)", precision=0, minimum=0, min_width=80)
                        noise_steps = gr.Slider(2, 16, value=9, step=1, label="Steps", min_width=120)
                    noise_btn = gr.Button("Interpolate noise", elem_id="noise-btn")
                    noise_image = gr.Image(show_label=False, format="png", interactive=False, elem_id="noise-strip",
                                           elem_classes="digits", height=170, buttons=["download"])
        style_btn.click(self.style_grid, [n_styles, style_seed], style_image, api_name="style_grid", **INFER)
        lab_btn.click(self.label_interpolation, [lab_a, lab_b, lab_steps, lab_seed], lab_image,
                      api_name="label_interpolation", **INFER)
        noise_btn.click(self.noise_interpolation, [noise_label, seed_a, seed_b, noise_steps], noise_image,
                        api_name="noise_interpolation", **INFER)
