"""Small variants of Gradio components that keep user mistakes out of tracebacks."""

from __future__ import annotations

import html
import math
from typing import Any

import gradio as gr


class DigitImage(gr.Image):
    """gr.Image whose unreadable uploads give a one-line message instead of a server exception."""

    is_template = True  # the browser uses the plain Image component

    def preprocess(self, payload: Any) -> Any:
        """As gr.Image, but a file Pillow cannot open becomes a gr.Error naming it."""
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - PIL raises many kinds of errors for a bad file
            name = getattr(payload, "orig_name", None) or "the uploaded file"
            raise gr.Error(f"Not an image file: {html.escape(str(name))} cannot be read as an image",
                           print_exception=False) from None


class WholeNumber(gr.Number):
    """gr.Number(precision=0) that refuses NaN and infinity with a message (gr.Number fails converting them to int)."""

    is_template = True  # the browser uses the plain Number component

    def preprocess(self, payload: Any) -> Any:
        """As gr.Number, but a value that is not a finite number becomes a gr.Error naming the field."""
        if isinstance(payload, float) and not math.isfinite(payload):
            raise gr.Error(f"{html.escape(str(self.label or 'This field'))} must be a whole number (got {payload})",
                           print_exception=False)
        return super().preprocess(payload)
