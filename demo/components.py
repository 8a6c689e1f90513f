"""Small variants of Gradio components that keep user mistakes out of tracebacks."""

from __future__ import annotations

import html
import math
from collections import OrderedDict
from typing import Any

import gradio as gr
from gradio.components.base import server
from gradio.data_classes import FileData

from gancls.images import ImageInputError, header_size

from .limits import (
    DRAWING_MAX_BYTES,
    DRAWING_MAX_LAYERS,
    DRAWING_MAX_SIDE,
    PROBE_MAX_PIXELS,
)

INLINE_MAX_MB = 20  # an image sent as a base64 data: URL instead of a file
BLOB_IDS = 64  # drawings sent piecewise (accept_blobs) and not yet used: the oldest go beyond this


class DigitImage(gr.Image):
    """gr.Image whose unreadable uploads give a one-line message instead of a server exception."""

    is_template = True  # the browser uses the plain Image component

    def preprocess(self, payload: Any) -> Any:
        """As gr.Image, but a file Pillow cannot open, or one too large, becomes a gr.Error naming it."""
        url = getattr(payload, "url", None) or ""
        if url.startswith("data:") and len(url) > INLINE_MAX_MB * 2**20 * 4 // 3:
            raise gr.Error(f"Image too large: an image sent inline may be at most {INLINE_MAX_MB} MB",
                           print_exception=False)
        path = getattr(payload, "path", None)
        if path and not url.startswith("data:"):
            name = getattr(payload, "orig_name", None) or "the uploaded file"
            try:
                header_size(path, html.escape(str(name)), max_pixels=PROBE_MAX_PIXELS)  # before Gradio opens it
            except ImageInputError as e:
                raise gr.Error(str(e)[:1].upper() + str(e)[1:], print_exception=False) from None
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - PIL raises many kinds of errors for a bad file
            name = getattr(payload, "orig_name", None) or "the uploaded file"
            raise gr.Error(f"Not an image file: {html.escape(str(name))} cannot be read as an image",
                           print_exception=False) from None


def _drawing_part(part: Any, what: str) -> None:
    """Refuse one part of a drawing (a file or bytes) that is too big, from its size and header only."""
    if part is None:
        return
    source = part.path if isinstance(part, FileData) else part
    if not isinstance(source, (str, bytes, bytearray)):
        raise gr.Error(f"The drawing's {what} is not an image", print_exception=False)
    try:
        header_size(source, f"the drawing's {what}", max_bytes=DRAWING_MAX_BYTES, max_side=DRAWING_MAX_SIDE)
    except ImageInputError as e:
        raise gr.Error(str(e)[:1].upper() + str(e)[1:], print_exception=False) from None


class DrawingPad(gr.Sketchpad):
    """gr.Sketchpad that checks every part of a drawing's size and header before Gradio decodes it.

    gr.Sketchpad decodes the background, each layer and the composite in full before any handler
    runs, so a 20 KB PNG claiming 13000x13000 pixels cost the server 1.9 GB per call. The pieces the
    browser sends ahead (accept_blobs) are bounded too: a few layers, a few MB each, the oldest
    unused drawings dropped.
    """

    is_template = True  # no __init__ of its own: Gradio reads the page config from __init__'s parameters

    def get_block_name(self) -> str:
        """The browser draws it with Gradio's image editor (as gr.Sketchpad)."""
        return "imageeditor"

    def preprocess(self, payload: Any) -> Any:
        """As gr.Sketchpad, after refusing any part over the limits."""
        if payload is not None:
            parts = self.blob_storage.get(payload.id) if getattr(payload, "id", None) is not None else payload
            if parts is not None:
                layers = list(parts.layers or [])
                if len(layers) > DRAWING_MAX_LAYERS:
                    raise gr.Error(f"Too many layers: the drawing has {len(layers)}, the limit is "
                                   f"{DRAWING_MAX_LAYERS}", print_exception=False)
                _drawing_part(parts.background, "background")
                _drawing_part(parts.composite, "composite")
                for layer in layers:
                    _drawing_part(layer, "layer")
        return super().preprocess(payload)

    @server
    def accept_blobs(self, data: Any) -> None:
        """As gr.ImageEditor's: keep one piece of a drawing the browser sends before the event, within limits."""
        index = data.data.get("index") if isinstance(data.data, dict) else None
        try:
            index = int(index) if index not in (None, "", "null") else None
        except (TypeError, ValueError):
            raise gr.Error("Bad drawing layer index", print_exception=False) from None
        if index is not None and not 0 <= index < DRAWING_MAX_LAYERS:
            raise gr.Error(f"Too many layers: the limit is {DRAWING_MAX_LAYERS}", print_exception=False)
        if any(len(f[1]) > DRAWING_MAX_BYTES for f in data.files):
            raise gr.Error(f"Drawing too large: the limit is {DRAWING_MAX_BYTES // 2**20} MB", print_exception=False)
        if not isinstance(self.blob_storage, OrderedDict):  # gr.ImageEditor's dict, trimmed oldest first here
            self.blob_storage = OrderedDict(self.blob_storage)
        super().accept_blobs(data)
        self.blob_storage.move_to_end(data.data["id"])
        while len(self.blob_storage) > BLOB_IDS:
            self.blob_storage.popitem(last=False)


class WholeNumber(gr.Number):
    """gr.Number(precision=0) that refuses NaN and infinity with a message (gr.Number fails converting them to int)."""

    is_template = True  # the browser uses the plain Number component

    def preprocess(self, payload: Any) -> Any:
        """As gr.Number, but a value that is not a finite number becomes a gr.Error naming the field."""
        if isinstance(payload, float) and not math.isfinite(payload):
            raise gr.Error(f"{html.escape(str(self.label or 'This field'))} must be a whole number (got {payload})",
                           print_exception=False)
        return super().preprocess(payload)
