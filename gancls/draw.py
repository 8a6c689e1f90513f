"""Every picture the app and the CLI show, drawn from uint8 digits and numbers (numpy and Pillow only).

Grids of digits with row or column captions, strips, the heat map of D's scores (and where a click
on it lands), and PNG files. The UI only places these images; it never draws.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import validate
from .errors import UserError
from .sampling import grid_image

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


def tile(images: Any, padding: int = 2) -> np.ndarray:
    """uint8 digits [rows, cols, 28, 28] (or a strip [cols, 28, 28]) -> one uint8 [H, W] image."""
    x = torch.as_tensor(np.asarray(images))
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[2:]) != (28, 28):
        raise UserError(f"tile needs uint8 digits [rows, cols, 28, 28] (got {tuple(x.shape)} {x.dtype})")
    return grid_image(x.reshape(-1, 28, 28), nrow=x.shape[1], padding=padding)


def with_column_labels(images: np.ndarray, labels: Sequence[Any], scale: int = 3,
                       row_labels: Sequence[Any] | None = None) -> np.ndarray:
    """uint8 digits [rows, cols, 28, 28] -> an upscaled uint8 [H, W] grid with a caption above each column."""
    grid = upscale(tile(images), scale)  # [H, W]; each digit takes 30 px with the padding
    cell, top = 30 * scale, 14 * scale
    left = 14 * scale if row_labels is not None else 0
    canvas = Image.new("L", (grid.shape[1] + left, grid.shape[0] + top), 64)
    canvas.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(10, 8 * scale) if any(len(str(t)) > 2 for t in labels) else 11 * scale)
    for c, text in enumerate(labels):
        x = left + 2 * scale + c * cell + 14 * scale  # the centre of column c's digit
        draw.text((x, top // 2), str(text), fill=230, font=font, anchor="mm")
    for r, text in enumerate(row_labels or []):
        draw.text((left // 2, top + 2 * scale + r * cell + 14 * scale), str(text), fill=180,
                  font=ImageFont.load_default(size=8 * scale), anchor="mm")
    return np.asarray(canvas)


def strip_image(images: np.ndarray, captions: Sequence[str], scale: int = 3) -> np.ndarray:
    """A one-row strip of digits [n, 28, 28] with a caption over each, upscaled."""
    return with_column_labels(np.asarray(images)[None], captions, scale=scale)





HEATMAP_CELL = 44  # px per heat-map cell; heatmap_cell_at maps clicks back to cells with it
# viridis at five stops: dark (low score) to yellow (high); perceptually even and colour-blind safe.
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def _colour(v: float, vmin: float, vmax: float) -> tuple[int, int, int]:
    t = 0.0 if vmax <= vmin else min(1.0, max(0.0, (v - vmin) / (vmax - vmin)))
    pos = t * (len(_VIRIDIS) - 1)
    lo = min(int(pos), len(_VIRIDIS) - 2)
    rgb = _VIRIDIS[lo] + (pos - lo) * (_VIRIDIS[lo + 1] - _VIRIDIS[lo])
    return tuple(int(round(c)) for c in rgb)  # type: ignore[return-value]


def _centre_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Any, fill: Any) -> None:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    draw.text((xy[0] - (x1 - x0) / 2 - x0, xy[1] - (y1 - y0) / 2 - y0), text, font=font, fill=fill)


def heatmap_image(matrix: Any, title: str = "", vmin: float = 0.0, vmax: float = 1.0, cell: int = HEATMAP_CELL,
                  row_title: str = "true digit", col_title: str = "label given to D") -> Image.Image:
    """A labelled RGB heat map of a square matrix (rows and columns 0..n-1), values in the cells."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not 1 <= len(m) <= 32:
        raise UserError(f"heat map needs a square matrix of up to 32 rows (got shape {m.shape})")
    if not np.isfinite(m).all():
        raise UserError("heat map values must be finite numbers (found NaN or infinity)")
    cell = validate.whole("cell size", cell, 16, 128)
    n = len(m)
    font = ImageFont.load_default(size=max(10, cell // 3))
    small = ImageFont.load_default(size=max(10, cell // 4))
    left, top, bar = cell + 24, cell + (cell // 2 if title else 0), cell // 2
    width, height = left + n * cell + 16 + bar + 48, top + n * cell + 12
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    if title:
        _centre_text(draw, (left + n * cell / 2, cell // 4), title, font, "black")
    _centre_text(draw, (left + n * cell / 2, top - cell * 3 // 4), col_title, small, "black")
    for j in range(n):  # column numbers on top, row numbers on the left
        _centre_text(draw, (left + (j + 0.5) * cell, top - cell // 4), str(j), font, "black")
        _centre_text(draw, (left - cell // 4, top + (j + 0.5) * cell), str(j), font, "black")
    # The row title runs up the left edge, drawn on its own strip and rotated.
    strip = Image.new("RGB", (n * cell, 20), "white")
    _centre_text(ImageDraw.Draw(strip), (n * cell / 2, 10), row_title, small, "black")
    img.paste(strip.rotate(90, expand=True), (2, top))
    for i in range(n):
        for j in range(n):
            v = float(m[i, j])
            x0, y0 = left + j * cell, top + i * cell
            rgb = _colour(v, vmin, vmax)
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=rgb)
            ink = "black" if sum(rgb) > 400 else "white"  # dark text on yellow-green, light on blue
            _centre_text(draw, (x0 + cell / 2, y0 + cell / 2), f"{v:.2f}", small, ink)
    # Colour bar: vmax at the top, vmin at the bottom.
    bx = left + n * cell + 16
    for r in range(n * cell):
        v = vmax - (vmax - vmin) * r / max(1, n * cell - 1)
        draw.line([bx, top + r, bx + bar, top + r], fill=_colour(v, vmin, vmax))
    draw.text((bx + bar + 4, top), f"{vmax:g}", font=small, fill="black")
    bottom = draw.textbbox((0, 0), f"{vmin:g}", font=small)[3]
    draw.text((bx + bar + 4, top + n * cell - bottom), f"{vmin:g}", font=small, fill="black")
    return img





def heatmap_cell_at(x: float, y: float, n: int = 10, cell: int = HEATMAP_CELL) -> tuple[int, int] | None:
    """(row, column) of the heat-map cell under pixel (x, y), or None outside the cells.

    Mirrors the layout of gancls.teach.heatmap_image drawn without a title: the cells start
    `cell + 24` px from the left and `cell` px from the top.
    """
    col, row = (x - (cell + 24)) // cell, (y - cell) // cell
    if 0 <= row < n and 0 <= col < n:
        return int(row), int(col)
    return None


def style_row(source: np.ndarray, images: np.ndarray, labels: Sequence[Any], scale: int = 3,
              source_caption: str = "style") -> np.ndarray:
    """A source digit [28, 28], an arrow, then digits [n, 28, 28] each captioned with its label: one uint8 [H, W].

    "This hand, every digit": the style tab shows a digit's style re-written as other labels this way.
    """
    left = with_column_labels(np.asarray(source)[None, None], [source_caption], scale=scale)  # [H, 30s]
    right = with_column_labels(np.asarray(images)[None], labels, scale=scale)  # [H, 30s * n]
    gap = 18 * scale
    canvas = Image.new("L", (left.shape[1] + gap + right.shape[1], right.shape[0]), 64)
    canvas.paste(Image.fromarray(left), (0, 0))
    canvas.paste(Image.fromarray(right), (left.shape[1] + gap, 0))
    # The arrow sits level with the digits (below the captions): source -> renderings.
    draw = ImageDraw.Draw(canvas)
    y, x0, x1 = 16 * scale + 14 * scale, left.shape[1] + 3 * scale, left.shape[1] + gap - 3 * scale
    draw.line([(x0, y), (x1 - 4 * scale, y)], fill=200, width=max(1, scale))
    draw.polygon([(x1, y), (x1 - 5 * scale, y - 4 * scale), (x1 - 5 * scale, y + 4 * scale)], fill=200)
    return np.asarray(canvas)
