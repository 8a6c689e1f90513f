"""Pure helpers for the teaching tabs: turn teach-library results into images, tables and plain sentences."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from gancls.teach import results_table, tile

from .views import upscale

HEATMAP_CELL = 44  # px per heat-map cell; the click handler maps pixels back to cells with it


def heatmap_cell_at(x: float, y: float, n: int = 10, cell: int = HEATMAP_CELL) -> tuple[int, int] | None:
    """(row, column) of the heat-map cell under pixel (x, y), or None outside the cells.

    Mirrors the layout of gancls.teach.heatmap_image drawn without a title: the cells start
    `cell + 24` px from the left and `cell` px from the top.
    """
    col, row = (x - (cell + 24)) // cell, (y - cell) // cell
    if 0 <= row < n and 0 <= col < n:
        return int(row), int(col)
    return None


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


def results_frame(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The ablation's headline numbers as a table, one row per objective ('—' where a figure is missing)."""
    headers, rows = results_table(results)
    return pd.DataFrame([["—" if v is None else v for v in row] for row in rows], columns=headers)


# (key, words, higher is better, difference too small to call)
_COMPARED = (
    ("label_accuracy", "the judge reads the asked-for digit in its samples", True, 0.03),
    ("mismatch_auc", "D tells a right label from a wrong one on real digits (mismatch AUC)", True, 0.03),
    ("d_classifier_accuracy", "D, used as a digit classifier, gets real test digits right", True, 0.03),
    ("frechet_distance", "its samples look like real digits to the judge (lower Fréchet distance)", False, None),
)


def verdict(results: dict[str, dict[str, Any]], stopped: bool = False) -> str:
    """A plain, even-handed reading of the results table: who is ahead on each figure, or that it is a tie."""
    arms = list(results)
    if len(arms) != 2:
        return ""
    a, b = arms
    lines = []
    for key, words, higher, tie in _COMPARED:
        va, vb = results[a].get(key), results[b].get(key)
        if va is None or vb is None:
            continue
        va, vb = float(va), float(vb)
        close = abs(va - vb) < (tie if tie is not None else 0.05 * max(abs(va), abs(vb), 1e-9))
        fig = ".0f" if key == "frechet_distance" and max(va, vb) >= 10 else ".3f"
        if close:
            lines.append(f"- **No clear difference** in how well {words}: {a} {va:{fig}} vs {b} {vb:{fig}}.")
        else:
            best = a if (va > vb) == higher else b
            lines.append(f"- **{best}** is ahead in how well {words}: {a} {va:{fig}} vs {b} {vb:{fig}}.")
    if results[a].get("label_accuracy") is None:
        lines.append("- The judge classifier is missing here, so label accuracy, FD and diversity are not measured.")
    steps = ", ".join(f"{arm}: {results[arm].get('steps', 0):,} steps" for arm in arms)
    caveat = ("One short run per objective with one seed: differences of a few points can be luck. "
              "Change the seed and run again to see how much the figures move.")
    head = "Stopped early, so these models are less trained than the budget allowed. " if stopped else ""
    return f"### What this run shows\n{head}({steps})\n" + "\n".join(lines) + f"\n\n{caveat}"


def dview_summary(d_accuracy: float, judge_accuracy: float | None, summary: dict[str, float], n: int) -> str:
    """The figures beside the heat map: D as a classifier next to the judge, and the diagonal gap."""
    judge = (f"the judge (a separate digit classifier) gets **{100 * judge_accuracy:.1f} %**"
             if judge_accuracy is not None else "the judge classifier is not available here")
    return (f"**D as a classifier:** label = the one D scores highest → **{100 * d_accuracy:.1f} %** of "
            f"these {n} real test digits right; {judge} on the same digits (chance: 10 %).\n\n"
            f"Diagonal (right label) mean **{summary['diagonal_mean']:.3f}**, off-diagonal (wrong label) mean "
            f"**{summary['off_diagonal_mean']:.3f}**, gap **{summary['gap']:+.3f}**.")


def strip_image(images: np.ndarray, captions: Sequence[str], scale: int = 3) -> np.ndarray:
    """A one-row strip of digits [n, 28, 28] with a caption over each, upscaled."""
    return with_column_labels(np.asarray(images)[None], captions, scale=scale)
