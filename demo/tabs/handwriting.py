"""Tab 8 · Your handwriting: a digit's style (read by the style encoder S) re-written as every label, and a
whole number or date written in one style as a PNG to download."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

import gradio as gr
import numpy as np

from gancls import validate
from gancls.draw import style_row, upscale
from gancls.encoder import (
    MAX_TEXT,
    StyleEncoder,
    check_text,
    source_digit,
    train_encoder,
    transfer,
    write_number,
)
from gancls.errors import UserError
from gancls.models import GANCLS

from ..components import DigitImage, DrawingPad, WholeNumber
from ..context import AppContext
from ..ui import INFER, PRIVATE, png, user_errors

HANDWRITING_HELP = """**Your handwriting, every digit.** G draws a digit from a *label* (what to write) and a
*noise vector* (how to write it: slant, thickness, width). A small **style encoder S**, trained to undo G (Reed et
al. 2016, §4.4), reads a digit and returns the noise that would draw it; G then writes every label with that noise.
Pick a real test digit, draw one, or upload a picture of one on plain paper (into **Style source**): **S sees**
shows the 28×28 digit S reads, and the row shows 0–9 written in that hand. The pretrained model ships with its S; for a
model you trained or uploaded, S is trained the first time (a few seconds, once per model)."""
NUMBER_HELP = f"""**Write a number or a date** (up to {MAX_TEXT} digits, e.g. 20261231) in one style: the style
source's above, or a seed's (the noise vector that seed draws, as in Generate). Shown and offered as a PNG file."""
NO_SOURCE = "no style source: pick a test digit, draw one or upload one first"
RESULT_SCALE = 3  # the source-and-ten-digits picture
NUMBER_SCALE = 4  # the written number, shown and downloaded (nearest-neighbour: crisp strokes)
GALLERY_ROWS = 3  # rows of 0-9 from the shared gallery: enough to choose from, short enough to see the result
STYLE_FROM = [("the style source", "source"), ("a seed", "seed")]


class HandwritingTab:
    """The Your handwriting tab's endpoints; a style encoder S is kept per model (the shipped one, else trained)."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self._lock = threading.Lock()
        # S trained here for models without one, and one lock per model so two visitors never train the same S.
        # Weak keys: when a session drops its model, its S goes too.
        self._encoders: weakref.WeakKeyDictionary[GANCLS, StyleEncoder] = weakref.WeakKeyDictionary()
        self._training: weakref.WeakKeyDictionary[GANCLS, threading.Lock] = weakref.WeakKeyDictionary()

    # ---------------------------------------------------------------- S per model
    def _ready_encoder(self, model: GANCLS) -> StyleEncoder | None:
        """S for `model` if there is one already (the checkpoint's, or one trained here), else None."""
        if model is self.ctx.pretrained and self.ctx.pretrained_encoder is not None:
            return self.ctx.pretrained_encoder
        with self._lock:
            return self._encoders.get(model)

    def _encoder(self, model: GANCLS) -> tuple[StyleEncoder, float | None]:
        """S for `model` and, when it had to be trained now, the seconds that took."""
        encoder = self._ready_encoder(model)
        if encoder is not None:
            return encoder, None
        with self._lock:
            lock = self._training.setdefault(model, threading.Lock())
        with lock:
            encoder = self._ready_encoder(model)  # another request may have trained it meanwhile
            if encoder is not None:
                return encoder, None
            # On this handler thread (one torch thread), not ctx.compute: a Train run holds the training
            # threads for as long as it runs. train_encoder works on a frozen copy of G, so the model stays
            # usable by every other tab meanwhile. Real digits for its pixel term: the server's own.
            data = self.ctx.data
            encoder = train_encoder(model, real=(data.train_images, data.train_labels))
            with self._lock:
                self._encoders[model] = encoder
            return encoder, float(encoder.info.get("train_seconds", 0.0))

    def _model(self, request: gr.Request | None) -> tuple[GANCLS, str]:
        session = self.ctx.session(request)
        return self.ctx.model_for(session), self.ctx.using(session).replace("**Using:** ", "")

    # ------------------------------------------------------------------- handlers
    def _transfer(self, image: Any, request: gr.Request | None) -> Iterator[tuple[Any, Any, str]]:
        if image is None:
            raise UserError(NO_SOURCE)
        seen = source_digit(image)  # refuses blank, photo-like and oversized images before any S is trained
        model, using = self._model(request)
        if self._ready_encoder(model) is None:
            yield seen, None, ("Training a style encoder S for this model (a few seconds, once per model; "
                                    "the pretrained model ships with one)…")
        encoder, trained = self._encoder(model)
        r = transfer(model, encoder, image)  # labels 0-9 in the style of r.source (== seen)
        picture = style_row(r.source, r.images, [int(k) for k in r.labels], scale=RESULT_SCALE)
        how = (f"S was trained for this model just now ({trained:.1f} s; kept for next time)" if trained is not None
               else "S " + ("shipped with the pretrained model" if encoder is self.ctx.pretrained_encoder
                            else "trained for this model earlier"))
        text = (f"S read the digit's style ({len(r.noise)} noise values) and G wrote 0–9 with it: the same hand, "
                f"ten labels. Model: {using}. {how}.")
        yield r.source, picture, text

    @user_errors
    def style_transfer(self, image: Any, request: gr.Request) -> Iterator[tuple[Any, Any, str]]:
        """The digit S reads (28x28), then the source beside 0-9 written in its style, and a line saying how."""
        yield from self._transfer(image, request)

    @user_errors
    def style_drawing(self, sketch: Any, request: gr.Request) -> Iterator[tuple[Any, Any, Any, str]]:
        """A drawing as the style source: the digit S reads (as the source and its preview), 0-9 in its style, a line."""
        if not sketch:
            raise UserError("the drawing is empty: draw a digit first")
        for seen, picture, text in self._transfer(sketch, request):
            yield seen, seen, picture, text

    @user_errors
    def write_number(self, text: str, style_from: str, seed: float, image: Any,
                     request: gr.Request) -> tuple[str, str]:
        """`text` (1-16 digits) written in one style, the source's or a seed's: shown, and as a PNG file."""
        digits = check_text(text)
        style_from = validate.choice("Style from", style_from or "source", [v for _, v in STYLE_FROM])
        session = self.ctx.session(request)
        model = self.ctx.model_for(session)
        if style_from == "seed":
            seed = validate.seed("Seed", seed)
            strip = write_number(model, None, digits, seed=seed)  # uint8 [28, 28 * n]
            name = f"gancls_{digits}_seed{seed}.png"
        else:
            if image is None:
                raise UserError(NO_SOURCE + " (or write in the style of a seed)")
            source_digit(image)  # a bad source is refused before any S is trained
            strip = write_number(model, self._encoder(model)[0], digits, style_image=image)
            name = f"gancls_{digits}_your_style.png"
        path = png(session, upscale(strip, NUMBER_SCALE), name)
        return path, path

    @user_errors
    def gallery_pick(self, evt: gr.SelectData) -> tuple[np.ndarray, str]:
        """The clicked gallery digit as the style source, and a line naming it."""
        digit, label, test_index = self.ctx.gallery[validate.whole("Gallery index", evt.index, 0,
                                                                   len(self.gallery()) - 1)]
        return digit, f"MNIST test digit #{test_index:,} (a {label}) is the style source."

    def gallery(self) -> list[tuple[np.ndarray, int, int]]:
        """The gallery's digits: the first GALLERY_ROWS rows of 0-9 of the shared gallery (Probe shows them all)."""
        return self.ctx.gallery[:10 * GALLERY_ROWS]

    def uploaded(self) -> str:
        """The caption for an uploaded style source."""
        return "Your image is the style source."

    def drawn(self) -> str:
        """The caption for a drawn style source."""
        return "Your drawing (centred and scaled to 28×28, as S reads it) is the style source."

    def cleared(self) -> tuple[None, None, str, str]:
        """The source was removed: nothing written in its style is left standing."""
        return None, None, "", "Pick a test digit, draw one or upload one."

    def first_view(self) -> tuple[np.ndarray, str, np.ndarray | None, Any, str]:
        """Gallery digit 0 as the source when the page opens, written as 0-9 if the shipped model has its S."""
        digit, label, test_index = self.ctx.gallery[0]
        caption = f"MNIST test digit #{test_index:,} (a {label}) is the style source."
        if self.ctx.pretrained_encoder is None:
            return digit, caption, None, None, "Press **Write 0–9 in this style** (S is trained first: a few seconds)."
        r = transfer(self.ctx.pretrained, self.ctx.pretrained_encoder, digit)
        picture = style_row(r.source, r.images, [int(k) for k in r.labels], scale=RESULT_SCALE)
        return digit, caption, r.source, picture, "Pick another digit, draw one or upload one to see it in its hand."

    def build(self) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it."""
        first_digit, first_caption, first_seen, first_picture, first_text = self.first_view()
        with gr.Tab("8 · Your handwriting", id="handwriting"):
            gr.Markdown(HANDWRITING_HELP, elem_classes="help")
            # Full width: Gradio keeps gallery thumbnails at least 100 px wide, so ten to a row need the room.
            with gr.Column(), gr.Tabs():
                with gr.Tab("MNIST test digits", id="hw-pick-gallery"):  # ids unique on the page: see probe.py
                    gallery = gr.Gallery([(upscale(d, 3), f"label {k}") for d, k, _ in self.gallery()],
                                         columns=10, rows=GALLERY_ROWS, height="auto", allow_preview=False,
                                         format="png", show_label=False, elem_id="hw-gallery")
                with gr.Tab("Draw", id="hw-pick-draw"):
                    sketch = DrawingPad(canvas_size=(280, 280), fixed_canvas=True, layers=False,
                                        brush=gr.Brush(default_size=12, colors=["#000000"], color_mode="fixed"),
                                        label="Pick the brush, then draw one digit, large", elem_id="hw-sketch")
                    draw_btn = gr.Button("Use this drawing", elem_id="hw-draw-btn")
            with gr.Row(equal_height=False):
                source = DigitImage(first_digit, label="Style source", type="filepath", image_mode=None, format="png",
                                    sources=["upload", "clipboard"], height=170, min_width=160, scale=1,
                                    elem_id="hw-source", elem_classes="digits")
                seen = gr.Image(first_seen, label="S sees (28×28)", format="png", interactive=False, height=170,
                                min_width=160, scale=1, elem_id="hw-seen", elem_classes="digits")
                with gr.Column(scale=3):
                    caption = gr.Markdown(first_caption, elem_id="hw-caption")
                    go = gr.Button("Write 0–9 in this style", variant="primary", elem_id="hw-btn")
                    text = gr.Markdown(first_text, elem_id="hw-text")
            result = gr.Image(first_picture, label="The source, then 0–9 in its style", format="png",
                              interactive=False, elem_id="hw-result", elem_classes="digits",
                              buttons=["download", "fullscreen"])
            gr.Markdown(NUMBER_HELP, elem_classes="help")
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=320):
                    number = gr.Textbox("2026", label=f"Number or date (1–{MAX_TEXT} digits)", max_lines=1,
                                        placeholder="20261231", elem_id="hw-number")
                    style_from = gr.Radio(STYLE_FROM, value="source", label="Style from", elem_id="hw-style-from")
                    seed = WholeNumber(0, label="Seed (with “a seed”)", precision=0, minimum=0, elem_id="hw-seed")
                    write_btn = gr.Button("Write it", variant="primary", elem_id="hw-write-btn")
                with gr.Column(scale=5):
                    number_image = gr.Image(show_label=False, format="png", interactive=False, height=140,
                                            elem_id="hw-number-image", elem_classes="digits")
                    number_file = gr.File(label="As a PNG file", interactive=False, elem_id="hw-number-file")

        outputs = [seen, result, text]
        # The button first, so that its event gets the plain API name.
        go.click(self.style_transfer, source, outputs, api_name="style_transfer", **INFER)
        gallery.select(self.gallery_pick, None, [source, caption], **PRIVATE).then(
            self.style_transfer, source, outputs, **PRIVATE, **INFER)
        source.upload(self.uploaded, None, caption, **PRIVATE).then(
            self.style_transfer, source, outputs, **PRIVATE, **INFER)
        draw_btn.click(self.style_drawing, sketch, [source, *outputs], api_name="style_drawing", **INFER).success(
            self.drawn, None, caption, **PRIVATE)
        source.clear(self.cleared, None, outputs + [caption], **PRIVATE)
        number_inputs = [number, style_from, seed, source]
        write_btn.click(self.write_number, number_inputs, [number_image, number_file], api_name="write_number",
                        **INFER)
        number.submit(self.write_number, number_inputs, [number_image, number_file], **PRIVATE, **INFER)
