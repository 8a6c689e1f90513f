"""Tab 3 · Probe: D's score for a real, drawn or uploaded digit and a label, and for all ten labels."""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch

from gancls import validate
from gancls.draw import upscale
from gancls.errors import UserError
from gancls.images import to_mnist
from gancls.probe import label_scores, score_table
from gancls.report import eval_subset

from ..components import DigitImage, DrawingPad
from ..context import AppContext
from ..ui import INFER, PRIVATE, user_errors

PROBE_HELP = """Pick a real test digit (its real label is shown), press **Random digit**, draw one, or upload an
image. D scores the image against the chosen label: **higher = "more like a real digit that matches this
label"**, low = a fake-looking image or a different digit. The bar chart shows D's score for all ten labels:
compare the bars with each other, not with 1 (see *Why does a real digit score well below 1?*)."""
FACT_DIGITS = 500  # test digits behind the figures in the explanation (a fixed, seeded subset)
SCORE_COLOURS = {"chosen label": "#4f46e5", "other labels": "#a5b4fc"}


def bar_table(scores: torch.Tensor, chosen: int) -> pd.DataFrame:
    """A bar-chart table of D's ten scores, the chosen label marked."""
    return pd.DataFrame({
        "label": [str(k) for k in range(len(scores))],
        "score": [round(float(s), 4) for s in scores],
        "which": ["chosen label" if k == chosen else "other labels" for k in range(len(scores))],
    })


def score_sentence(score: float, label: int, best: int, best_score: float | None = None) -> str:
    """Explain one match score in plain words: what counts is how the label ranks among the ten."""
    if best_score is not None and best_score < 0.3:
        verdict = (f"All ten scores are low (the best, label {best}, is {best_score:.2f}): D finds this unlike a "
                   "real digit with any label")
    elif best == label:
        verdict = f"Of the ten labels, D rates **{label}** highest: to D this is a {label}"
    else:
        verdict = (f"D rates label **{best}** higher than {label}" + (f" ({best_score:.2f})" if best_score else "")
                   + f": to D this looks more like a {best}")
    return (f"### D(image, {label}) = {score:.3f}\n{verdict}.\n\n"
            "High = a real digit that shows this label, low = fake-looking or a different digit. The number is "
            "not a probability: real digits with their right label score well below 1 (see below).")


SCORES_WHY = """D was never asked for a probability. It learns with least-squares targets: **1** for a real digit
with its right label, **0** for a generated digit and for a real digit with a wrong label. Once G draws well, D
cannot tell G's best digits from real ones, and for pairs it cannot tell apart the best least-squares answer is a
compromise between 1 and 0 — about ⅔ with these targets. So real digits stay well below 1, and a drawing can
even score higher than a typical real digit (D never saw drawings; its absolute score off MNIST means little)."""


def score_facts(model: Any, data: Any, meta: dict[str, Any]) -> str:
    """How well D ranks labels, with this model's figures on real test digits (the mismatch AUC)."""
    x, y = eval_subset(data, FACT_DIGITS)
    table = score_table(model, x)  # [M, 10]
    right = table[torch.arange(len(y)), y]  # [M]
    wrong = table[~torch.nn.functional.one_hot(y, table.shape[1]).bool()].reshape(len(y), -1)  # [M, 9]
    top = float((table.argmax(dim=1) == y).float().mean())
    auc = (meta.get("eval") or {}).get("mismatch_auc")  # the checkpoint's own evaluation, when it has one
    if not isinstance(auc, (int, float)):  # else the same figure over every (digit, wrong label) pair here
        auc = float((right[:, None] > wrong).float().mean() + 0.5 * (right[:, None] == wrong).float().mean())
    return f"""What D does learn well is **which label fits**. With the pretrained model, {len(y):,} real MNIST test digits
score **{float(right.mean()):.2f}** on average with their right label and **{float(wrong.mean()):.2f}** with a wrong one,
and D rates the right label highest for **{100 * top:.0f} %** of them. The usual figure for this ranking is the
**mismatch AUC**: take a real digit once with its right label and once with a wrong one; D scores the right
pair higher **{100 * auc:.1f} %** of the time (50 % would mean D ignores the label).{averaged_note(meta)}"""


def averaged_note(meta: dict[str, Any]) -> str:
    """Why Probe's D and the Train curves can disagree, for a model whose D is an average (else nothing)."""
    decay = (meta.get("train_config") or {}).get("d_ema_decay")
    if not isinstance(decay, (int, float)) or not decay > 0:
        return ""
    return f"""

The D you probe is a moving average of the D that trained (each step keeps {decay:g} of the average): the D
that trains swings from step to step, and its average reads labels more reliably. The curves on *Train* show
the D that trains."""


def _real(test_index: int, label: int) -> str:
    return f"MNIST test digit #{test_index:,} · **real label: {label}**"


class ProbeTab:
    """The Probe tab's endpoints, bound to one AppContext."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self._facts: str | None = None
        self._lock = threading.Lock()

    @user_errors
    def probe(self, image: Any, label: float, request: gr.Request) -> tuple[str, Any, np.ndarray]:
        """D's match score for (image, label), its scores for all ten labels, and the 28x28 digit D saw."""
        digit, scores = self._scores(image, request)
        k = validate.label("Label", label)
        best = int(scores.argmax())
        return score_sentence(float(scores[k]), k, best, float(scores[best])), bar_table(scores, k), digit

    def first_probe(self) -> tuple[np.ndarray, str, int, str, Any]:
        """Gallery digit 0 probed with the pretrained model: the Probe tab's content when the page opens."""
        digit, real, label = self.gallery_digit(0)
        scores = label_scores(self.ctx.pretrained, digit)
        best = int(scores.argmax())
        return digit, real, label, score_sentence(float(scores[label]), label, best, float(scores[best])), \
            bar_table(scores, label)

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

    def facts(self) -> str:
        """The pretrained D's figures on real test digits (measured on first use: a few seconds on a busy CPU)."""
        with self._lock:
            if self._facts is None:
                self._facts = score_facts(self.ctx.pretrained, self.ctx.data, self.ctx.pretrained_meta)
            return self._facts

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
                    with gr.Accordion("Why does a real digit score well below 1?", open=False,
                                      elem_id="probe-why") as why:
                        gr.Markdown(SCORES_WHY, elem_classes="help")
                        facts = gr.Markdown("*Measuring the pretrained D on real test digits…*",
                                            elem_classes="help", elem_id="probe-facts")
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
        why.expand(self.facts, None, facts, api_name="score_facts", concurrency_limit=None, show_progress="hidden")
        probe_image.clear(self.cleared, None, [score, bars, seen, raw, real], **PRIVATE)
