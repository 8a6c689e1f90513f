"""Tab 3 · Probe: D's score for a real, drawn or uploaded digit and a label, and for all ten labels."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch

from gancls import validate
from gancls.draw import upscale
from gancls.errors import UserError
from gancls.images import to_mnist
from gancls.probe import label_scores

from ..components import DigitImage, DrawingPad
from ..context import AppContext
from ..ui import INFER, PRIVATE, user_errors

PROBE_HELP = """Pick a real test digit (its real label is shown), press **Random digit**, draw one, or upload an
image. D scores the image against the chosen label: **high = "a real digit that matches this label"**,
low = a fake-looking image or a different digit. The bar chart shows D's score for all ten labels."""
SCORE_COLOURS = {"chosen label": "#4f46e5", "other labels": "#a5b4fc"}


def score_table(scores: torch.Tensor, chosen: int) -> pd.DataFrame:
    """A bar-chart table of D's ten scores, the chosen label marked."""
    return pd.DataFrame({
        "label": [str(k) for k in range(len(scores))],
        "score": [round(float(s), 4) for s in scores],
        "which": ["chosen label" if k == chosen else "other labels" for k in range(len(scores))],
    })


def score_sentence(score: float, label: int, best: int) -> str:
    """Explain one match score in plain words."""
    if score >= 0.7:
        verdict = f"D thinks this is **a real digit that matches label {label}**"
    elif score >= 0.3:
        verdict = f"D is unsure whether this is a real digit matching label {label}"
    else:
        verdict = f"D thinks this is **not** a real digit matching label {label} (wrong digit, or fake-looking)"
    tail = "" if best == label else f" Its best match is label **{best}**."
    return (f"### D(image, {label}) = {score:.3f}\n{verdict}.{tail}\n\n"
            "The score is the discriminator's probability that the image is a *real* handwritten digit "
            "*and* shows the given label: near 1 = real and matching, near 0 = fake or a different digit.")


def _real(test_index: int, label: int) -> str:
    return f"MNIST test digit #{test_index:,} · **real label: {label}**"


class ProbeTab:
    """The Probe tab's endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @user_errors
    def probe(self, image: Any, label: float, request: gr.Request) -> tuple[str, Any, np.ndarray]:
        """D's match score for (image, label), its scores for all ten labels, and the 28x28 digit D saw."""
        digit, scores = self._scores(image, request)
        k = validate.label("Label", label)
        return score_sentence(float(scores[k]), k, int(scores.argmax())), score_table(scores, k), digit

    def first_probe(self) -> tuple[np.ndarray, str, int, str, Any]:
        """Gallery digit 0 probed with the pretrained model: the Probe tab's content when the page opens."""
        digit, real, label = self.gallery_digit(0)
        scores = label_scores(self.ctx.pretrained, digit)
        return digit, real, label, score_sentence(float(scores[label]), label, int(scores.argmax())), \
            score_table(scores, label)

    @user_errors
    def label_scores(self, image: Any, request: gr.Request) -> dict[str, float]:
        """D's score for the image against every label 0-9."""
        _, scores = self._scores(image, request)
        return {str(k): round(float(s), 4) for k, s in enumerate(scores)}

    def _scores(self, image: Any, request: gr.Request | None) -> tuple[np.ndarray, torch.Tensor]:
        if image is None:
            raise UserError("no image: pick a test digit, press Random digit, draw one or upload one")
        digit = to_mnist(image)  # uint8 [28, 28]
        return digit, label_scores(self.ctx.model_for(self.ctx.session(request)), digit)

    @user_errors
    def use_drawing(self, sketch: Any) -> tuple[np.ndarray, str]:
        """The drawing as an MNIST-style 28x28 digit, ready to probe."""
        if not sketch:
            raise UserError("the drawing is empty: draw a digit first")
        return to_mnist(sketch), "Your drawing, centred and scaled to 28×28 as MNIST digits are."

    @user_errors
    def gallery_digit(self, index: float) -> tuple[np.ndarray, str, int]:
        """Gallery digit number `index`: the image, a line with its real label, and that label."""
        digit, label, test_index = self.ctx.gallery[validate.whole("Gallery index", index, 0, len(self.ctx.gallery) - 1)]
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

    def cleared(self) -> tuple[str, None, None, None, str]:
        """The image was removed: no score is left standing for an image that is gone."""
        return "Pick a test digit, draw one or upload an image to see D's score.", None, None, None, ""

    def select_index(self, evt: gr.SelectData) -> int:
        """The index of the clicked gallery digit."""
        return int(evt.index)

    def build(self) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it."""
        first_digit, first_real, first_label, first_score, first_bars = self.first_probe()
        with gr.Tab("3 · Probe", id="probe"):
            gr.Markdown(PROBE_HELP, elem_classes="help")
            gr.Markdown("One digit at a time here; tab **5 · D's view** shows D's score for every digit "
                        "against every label at once.", elem_classes="help", elem_id="probe-to-dview")
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    with gr.Tabs():
                        # Explicit ids: two inner tab sets with the same labels and default ids made Gradio
                        # draw the page's tab bar wrongly (a tab twice, "3 · Probe" gone) after a click.
                        with gr.Tab("MNIST test digits", id="probe-pick-gallery"):
                            gallery = gr.Gallery([(upscale(d, 3), f"label {k}") for d, k, _ in self.ctx.gallery],
                                                 columns=10, height="auto", allow_preview=False, format="png",
                                                 show_label=False, elem_id="gallery")
                            random_btn = gr.Button("Random digit", elem_id="random-btn")
                        with gr.Tab("Draw", id="probe-pick-draw"):
                            sketch = DrawingPad(canvas_size=(280, 280), fixed_canvas=True, layers=False,
                                                brush=gr.Brush(default_size=12, colors=["#000000"],
                                                               color_mode="fixed"),
                                                label="Pick the brush, then draw one digit, large", elem_id="sketch")
                            draw_btn = gr.Button("Probe this drawing", elem_id="draw-btn")
                with gr.Column(scale=4):
                    with gr.Row(equal_height=False):
                        probe_image = DigitImage(first_digit, label="Image to probe",
                                                 type="filepath", image_mode=None, format="png",
                                                 sources=["upload", "clipboard"], height=200, elem_id="probe-image")
                        seen = gr.Image(first_digit, label="D sees (28×28)", format="png", interactive=False,
                                        height=200, elem_id="probe-seen")
                    real = gr.Markdown(first_real, elem_id="real-label")
                    label = gr.Radio([(str(k), k) for k in range(10)], value=first_label, label="Label to test",
                                     elem_id="probe-label")
                    probe_btn = gr.Button("Probe", variant="primary", elem_id="probe-btn")
                    score = gr.Markdown(first_score, elem_id="probe-score")
                    bars = gr.BarPlot(first_bars, x="label", y="score", color="which", y_lim=[0, 1],
                                      title="D's score for every label", label="D's scores",
                                      show_label=False, height=290, sort=None, color_map=SCORE_COLOURS,
                                      elem_id="probe-bars")
                    with gr.Accordion("Scores as numbers", open=False):
                        raw = gr.JSON(elem_id="probe-raw")
            index = gr.Number(visible=False)

        outputs = [score, bars, seen]

        def probe_on(listener, **names) -> None:
            # Every way of choosing an image or a label ends with D's scores on the right.
            listener(self.probe, [probe_image, label], outputs, **names.get("probe", PRIVATE), **INFER).then(
                self.label_scores, probe_image, raw, **names.get("scores", PRIVATE), **INFER)

        # The button first, so that its events get the plain API names.
        probe_on(probe_btn.click, probe=dict(api_name="probe"), scores=dict(api_name="label_scores"))
        picked = [probe_image, real, label]
        chosen = gallery.select(self.select_index, None, index, **PRIVATE).then(
            self.gallery_digit, index, picked, api_name="gallery_digit", **INFER)
        probe_on(chosen.then)
        probe_on(random_btn.click(self.random_digit, None, picked, api_name="random_digit", **INFER).then)
        probe_on(draw_btn.click(self.use_drawing, sketch, [probe_image, real], api_name="use_drawing", **INFER).then)
        probe_on(probe_image.upload(self.uploaded, None, real, **PRIVATE).then)
        probe_on(label.input)
        probe_image.clear(self.cleared, None, [score, bars, seen, raw, real], **PRIVATE)
