"""The discriminator's view: how strongly D says "real and matching" for every (digit, label) pair."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..models import GANCLS
from ._common import TeachError, as_digits, as_labels, check_int, check_label

# viridis at five stops: dark (low score) to yellow (high); perceptually even and colour-blind safe.
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


@torch.no_grad()
def label_score_table(model: GANCLS, images_u8: Any, chunk: int = 500) -> np.ndarray:
    """D's score for every image against every label: float32 [N, num_classes] in [0, 1]."""
    x = as_digits(images_u8)
    k = model.cfg.num_classes
    out = []
    for part in x.split(chunk):
        b = len(part)
        imgs = part.float().div(255).unsqueeze(1).repeat_interleave(k, dim=0)  # [b*k, 1, 28, 28]
        ys = torch.arange(k).repeat(b)  # [b*k]: image 0 with labels 0..k-1, then image 1, ...
        out.append(model.match_scores(imgs, ys).view(b, k).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, k), dtype=np.float32)


def _pools(labels: torch.Tensor, per_class: int, k: int) -> list[torch.Tensor]:
    """Indices of the first `per_class` digits of each true label (fixed, so views agree)."""
    pools = []
    for i in range(k):
        idx = torch.nonzero(labels == i).flatten()[:per_class]
        if len(idx) == 0:
            raise TeachError(f"there is no digit with true label {i} among the images given")
        pools.append(idx)
    return pools


def match_matrix(model: GANCLS, images_u8: Any, labels: Any, per_class: int = 100) -> np.ndarray:
    """Mean D score [10, 10]: row i = real digits of true label i, column j = the label D is told."""
    x = as_digits(images_u8)
    y = as_labels(labels, len(x), num_classes=model.cfg.num_classes)
    per_class = check_int("digits per class", per_class, 1, 10_000)
    pools = _pools(y, per_class, model.cfg.num_classes)
    return np.stack([label_score_table(model, x[idx]).mean(axis=0) for idx in pools])  # [10, 10]


def d_classifier_accuracy(model: GANCLS, images_u8: Any, labels: Any) -> float:
    """Share of digits whose highest-scoring label under D is their true label (D used as a classifier)."""
    x = as_digits(images_u8)
    y = as_labels(labels, len(x), num_classes=model.cfg.num_classes)
    if len(x) == 0:
        raise TeachError("d_classifier_accuracy needs at least one image")
    pred = label_score_table(model, x).argmax(axis=1)  # [N]
    return float((pred == y.numpy()).mean())


def matrix_summary(matrix: np.ndarray) -> dict[str, float]:
    """Diagonal mean, off-diagonal mean and their gap: one number for "does D read the label?"."""
    m = np.asarray(matrix, dtype=np.float64)
    off = ~np.eye(len(m), dtype=bool)
    diag, rest = float(np.diag(m).mean()), float(m[off].mean())
    return {"diagonal_mean": diag, "off_diagonal_mean": rest, "gap": diag - rest}


class CellExamples(NamedTuple):
    """Digits of true label i with D's score for label j (highest score first by default)."""

    images: np.ndarray  # uint8 [k, 28, 28]
    scores: np.ndarray  # float32 [k] in [0, 1]
    indices: np.ndarray  # int64 [k]: positions in the images passed in


def cell_examples(model: GANCLS, images_u8: Any, labels: Any, i: int, j: int, k: int = 8,
                  per_class: int = 100, order: str = "highest") -> CellExamples:
    """Up to k digits of true label i from the cell's pool, with D's score when told label j.

    The pool is the same `per_class` digits match_matrix averages over, so the examples explain
    the cell. `order`: "highest" (the digits D most accepts as j), "lowest", or "first".
    """
    x = as_digits(images_u8)
    y = as_labels(labels, len(x), num_classes=model.cfg.num_classes)
    i, j = check_label("true label", i), check_label("label given to D", j)
    k = check_int("number of examples", k, 1, 64)
    per_class = check_int("digits per class", per_class, 1, 10_000)
    if order not in ("highest", "lowest", "first"):
        raise TeachError(f"order must be 'highest', 'lowest' or 'first' (got {order!r})")
    idx = _pools(y, per_class, model.cfg.num_classes)[i]
    scores = label_score_table(model, x[idx])[:, j]  # [P]
    pick = {"highest": np.argsort(-scores, kind="stable"), "lowest": np.argsort(scores, kind="stable"),
            "first": np.arange(len(scores))}[order][:k]
    return CellExamples(x[idx[pick]].numpy(), scores[pick].astype(np.float32), idx[pick].numpy())


def _colour(v: float, vmin: float, vmax: float) -> tuple[int, int, int]:
    t = 0.0 if vmax <= vmin else min(1.0, max(0.0, (v - vmin) / (vmax - vmin)))
    pos = t * (len(_VIRIDIS) - 1)
    lo = min(int(pos), len(_VIRIDIS) - 2)
    rgb = _VIRIDIS[lo] + (pos - lo) * (_VIRIDIS[lo + 1] - _VIRIDIS[lo])
    return tuple(int(round(c)) for c in rgb)  # type: ignore[return-value]


def _centre_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Any, fill: Any) -> None:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    draw.text((xy[0] - (x1 - x0) / 2 - x0, xy[1] - (y1 - y0) / 2 - y0), text, font=font, fill=fill)


def heatmap_image(matrix: Any, title: str = "", vmin: float = 0.0, vmax: float = 1.0, cell: int = 44,
                  row_title: str = "true digit", col_title: str = "label given to D") -> Image.Image:
    """A labelled RGB heat map of a square matrix (rows and columns 0..n-1), values in the cells."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not 1 <= len(m) <= 32:
        raise TeachError(f"heat map needs a square matrix of up to 32 rows (got shape {m.shape})")
    if not np.isfinite(m).all():
        raise TeachError("heat map values must be finite numbers (found NaN or infinity)")
    cell = check_int("cell size", cell, 16, 128)
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
