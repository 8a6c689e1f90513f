"""Training as a film: the fixed-noise grids as an animated GIF/WebP, and the metric history as CSV."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .. import validate
from ..errors import UserError
from ..sampling import grid_image

FORMATS = ("gif", "webp")


def _frame(step: int, images: torch.Tensor, cols: int, scale: int, font: Any) -> Image.Image:
    """One grid [10*cols, 28, 28] -> an upscaled grayscale frame with "step N" in a bar above it."""
    grid = grid_image(images, nrow=cols)  # uint8 [H, W]
    h, w = grid.shape
    body = Image.fromarray(grid, mode="L").resize((w * scale, h * scale), Image.NEAREST)
    bar = 8 * scale + 4
    frame = Image.new("L", (body.width, body.height + bar), 32)
    frame.paste(body, (0, bar))
    ImageDraw.Draw(frame).text((6, 2), f"step {step:,}", font=font, fill=235)
    return frame


def pick_frames(n: int, max_frames: int) -> list[int]:
    """Evenly spaced indices into n items, at most max_frames, always keeping the first and the last."""
    if n <= max_frames:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_frames - 1)) for i in range(max_frames)})


def timeline_animation(samples_history: Sequence[tuple[int, Any]], path: str | os.PathLike,
                       fmt: str = "gif", fps: float = 4.0, scale: int = 3, max_frames: int = 300) -> Path:
    """Write the fixed-noise grids (trainer.samples_history: (step, uint8 [10*cols, 28, 28])) as an animation.

    One frame per grid (a grid redrawn at the same step counts once; evenly thinned to
    `max_frames` for long runs), upscaled `scale`x with nearest neighbours, the step number in a
    caption bar; loops forever. Returns the path.
    """
    if fmt not in FORMATS:
        raise UserError(f"animation format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not 0.2 <= fps <= 60:
        raise UserError(f"frames per second must be a number from 0.2 to 60 (got {fps!r})")
    scale = validate.whole("scale", scale, 1, 8)
    max_frames = validate.whole("max frames", max_frames, 2, 5000)
    history = list(samples_history)
    # The engine may draw the grid twice at one step (last metrics, then the end of the run).
    history = [h for k, h in enumerate(history) if k + 1 == len(history) or not _same_step(h, history[k + 1])]
    if not history:
        raise UserError("there are no sample grids yet: train for a moment before exporting the timeline")
    font = ImageFont.load_default(size=8 * scale)
    frames = []
    for i in pick_frames(len(history), max_frames):
        try:
            step, images = history[i]
        except (TypeError, ValueError):
            raise UserError(f"timeline entry {i} is not a (step, images) pair") from None
        images = validate.digits(images, f"timeline entry {i}")
        if len(images) == 0 or len(images) % 10:
            raise UserError(f"timeline entry {i} has {len(images)} digits; a grid has ten rows of equal length")
        frames.append(_frame(int(step), images, len(images) // 10, scale, font))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    duration = int(round(1000 / fps))  # ms per frame
    if fmt == "webp":
        frames = [f.convert("RGB") for f in frames]
        extra: dict[str, Any] = {"lossless": True}
    else:
        extra = {"optimize": False}
    frames[0].save(path, format=fmt.upper(), save_all=True, append_images=frames[1:], duration=duration,
                   loop=0, **extra)
    return path


def _same_step(a: Any, b: Any) -> bool:
    try:
        return int(a[0]) == int(b[0])
    except (TypeError, ValueError, IndexError):
        return False  # malformed entries are reported by the loop that reads them


def history_csv(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the metric history (trainer.history: one dict per Metrics event) as CSV with a header row."""
    rows = list(history)
    if not rows:
        raise UserError("there are no metrics yet: train for a moment before exporting the history")
    columns: dict[str, None] = {}  # union of the keys, in first-seen order
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(f"history entry {i} is not a dict of metric values")
        columns.update(dict.fromkeys(row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return path


def _cell(v: Any) -> Any:
    """Numbers as text that reads back exactly; numpy/torch scalars unwrapped; None as empty."""
    if v is None:
        return ""
    if isinstance(v, (np.generic, torch.Tensor)):
        v = v.item()
    return repr(v) if isinstance(v, float) else v
