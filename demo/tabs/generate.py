"""Tab 2 · Generate: digits for chosen labels from the model in use, as a grid and a PNG file."""

from __future__ import annotations

import gradio as gr

from gancls import validate
from gancls.draw import labelled_grid
from gancls.sampling import label_grid

from ..components import WholeNumber
from ..context import AppContext
from ..limits import GENERATE_MAX_LABELS, GENERATE_MAX_PER_LABEL
from ..ui import INFER, png, user_errors

MAX_PER_LABEL = GENERATE_MAX_PER_LABEL  # the name other modules and tests know
GEN_HELP = """Each row is one chosen label, each column one noise vector. With **same noise for every label**
column *j* uses one noise vector for all rows, so you see one handwriting style across digits."""


class GenerateTab:
    """The Generate tab's endpoint, bound to one AppContext."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def generate(self, labels: list[int], per_label: float, seed: float, same_noise: bool,
                 request: gr.Request) -> tuple[str, str]:
        """A grid of generated digits, one row per chosen label (shown, and offered as a PNG file)."""
        session = self.ctx.session(request)
        y = validate.labels(labels if labels is not None else [], max_count=GENERATE_MAX_LABELS).tolist()
        per = validate.whole("Samples per label", per_label, 1, MAX_PER_LABEL)
        seed = validate.seed("Seed", seed)
        images, _ = label_grid(self.ctx.model_for(session), y, per, seed, same_noise=bool(same_noise))
        grid = labelled_grid(images, y, per, scale=2)  # uint8 [H, W]
        name = f"gancls_{''.join(map(str, y))}_x{per}_seed{seed}{'_same' if same_noise else ''}.png"
        path = png(session, grid, name)
        return path, path

    def build(self) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it."""
        with gr.Tab("2 · Generate", id="generate"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=260):
                    labels = gr.CheckboxGroup([(str(k), k) for k in range(10)], value=list(range(10)),
                                              label="Labels", elem_id="gen-labels")
                    per_label = gr.Slider(1, MAX_PER_LABEL, value=8, step=1, label="Samples per label")
                    seed = WholeNumber(0, label="Seed", precision=0, minimum=0)
                    same_noise = gr.Checkbox(False, label="Same noise for every label")
                    gen_btn = gr.Button("Generate", variant="primary", elem_id="gen-btn")
                    gen_file = gr.File(label="Grid as PNG", interactive=False, elem_id="gen-file")
                    gr.Markdown(GEN_HELP, elem_classes="help")
                with gr.Column(scale=5):
                    gen_image = gr.Image(show_label=False, format="png", interactive=False,
                                         elem_id="gen-image", buttons=["download", "fullscreen"])
        gen_btn.click(self.generate, [labels, per_label, seed, same_noise], [gen_image, gen_file],
                      api_name="generate", **INFER)
