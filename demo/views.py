"""Pure helpers that turn engine outputs into what the UI shows: images, plot tables, HTML, text."""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from gancls.sampling import grid_image

LOSS_CURVES = {"loss_d": "D loss", "loss_g": "G loss"}
D_CURVES = {"d_real": "D(real, right label)", "d_fake": "D(fake, right label)", "d_wrong": "D(real, wrong label)"}
CELL = 30  # one digit plus grid_image's 2 px padding


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of a uint8 [H, W] image, so digits stay crisp."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def labelled_grid(images: torch.Tensor, labels: Sequence[int], cols: int, scale: int = 3) -> np.ndarray:
    """uint8 digits [rows*cols, 28, 28] -> an upscaled grid [H, W] with each row's label on its left."""
    grid = upscale(grid_image(images, nrow=cols), scale)  # [H, W]
    margin = 16 * scale
    canvas = Image.new("L", (grid.shape[1] + margin, grid.shape[0]), 64)
    canvas.paste(Image.fromarray(grid), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(14 * scale)
    for r, label in enumerate(labels):
        centre_y = (2 + r * CELL + 14) * scale
        draw.text((margin // 2, centre_y), str(label), fill=230, font=font, anchor="mm")
    return np.asarray(canvas)


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed


def save_png_fast(image: np.ndarray, path: Path) -> str:
    """Write a uint8 [H, W] image as a lightly compressed PNG (3x faster than Gradio's default); returns the path."""
    Image.fromarray(image).save(path, format="PNG", compress_level=1)
    return str(path)


def thin(history: list[dict[str, float]], max_points: int) -> list[dict[str, float]]:
    """At most `max_points` evenly spaced entries of a metric history, always keeping the last."""
    if len(history) <= max_points:
        return history
    stride = -(-len(history) // max_points)  # ceil division
    return history[::stride] + ([history[-1]] if (len(history) - 1) % stride else [])


def curves(history: list[dict[str, float]], names: dict[str, str], max_points: int = 400) -> pd.DataFrame:
    """Long-format table (step, value, curve) for a gr.LinePlot with color="curve"."""
    points = thin(history, max_points)
    # Explicit dtypes: an empty table must still say "numbers", or the plot keeps treating them as categories.
    return pd.DataFrame({
        "step": pd.Series([int(h["step"]) for h in points for _ in names], dtype="int64"),
        "value": pd.Series([float(h[key]) for h in points for key in names], dtype="float64"),
        "curve": pd.Series([name for _ in points for name in names.values()], dtype="object"),
    })


def start_curves(history: list[dict[str, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plots before any run: the pretrained model's curves, else one point per curve.

    Never empty: Gradio 6's LinePlot fixes its colour legend from its first value, so a plot that
    starts without rows draws no lines later.
    """
    if not all(k in h for h in history[:1] for k in ("step", *LOSS_CURVES, *D_CURVES)):
        history = []
    history = history or [dict(step=0, loss_d=0.0, loss_g=0.0, d_real=0.5, d_fake=0.5, d_wrong=0.5)]
    return curves(history, LOSS_CURVES), curves(history, D_CURVES)


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


def using_text(steps: int | None, pretrained_note: str, training: bool = False) -> str:
    """The 'Using: …' line that says which model Generate and Probe use."""
    if steps is None:
        text = f"**Using:** {pretrained_note}"
    else:
        text = f"**Using:** your model trained for {steps:,} steps"
    return text + (" · a new run is training; it takes over when it stops" if training else "")


def status_html(*, state: str, message: str, progress: float | None = None,
                stats: dict[str, Any] | None = None) -> str:
    """The training status box: a progress bar, key figures and one line of explanation."""
    bar = "" if progress is None else (
        f'<div class="gc-bar"><div style="width:{100 * min(max(progress, 0.0), 1.0):.1f}%"></div></div>')
    figures = "".join(f"<span>{html.escape(k)} <b>{html.escape(str(v))}</b></span>" for k, v in (stats or {}).items())
    return (f'<div class="gc-status gc-{state}">{bar}<div class="gc-stats">{figures}</div>'
            f'<div class="gc-msg">{html.escape(message)}</div></div>')


def run_stats(m: dict[str, float] | None, step: int, total: int | None, budget: float | None,
              device: str, data: str) -> dict[str, Any]:
    """The figures shown under the progress bar."""
    stats: dict[str, Any] = {"step": f"{step:,}" + (f" / {total:,}" if total else "")}
    if m:
        stats["epoch"] = f"{m['epoch']:.2f}"
        stats["images/s"] = f"{m['images_per_s']:,.0f}"
        stats["elapsed"] = f"{m['elapsed']:.1f} s" + (f" of {budget:g} s" if budget else "")
    stats["device"] = device
    stats["data"] = data.split(" from ")[0]
    return stats
