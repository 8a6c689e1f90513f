"""Tab 5 · D's view: the 10×10 heat map of D's score (true digit × label told), D as a classifier,
and the real digits behind any cell."""

from __future__ import annotations

import threading
import weakref
from typing import Any

import gradio as gr
import numpy as np
import torch

from gancls import validate
from gancls.draw import HEATMAP_CELL, heatmap_cell_at, heatmap_image, upscale
from gancls.errors import UserError
from gancls.judge import judge_predict
from gancls.models import GANCLS
from gancls.probe import score_table
from gancls.report import match_matrix, matrix_summary
from gancls.teach import cell_examples

from ..context import AppContext
from ..ui import INFER, PRIVATE, user_errors

DVIEW_PER_CLASS = 50  # real test digits per label behind the heat map: 500 digits x 10 labels = 5,000 D calls
DVIEW_HELP = """**What is D looking at?** Each cell is D's average score for real test digits of one true label
(row) when D is *told* a label (column). A discriminator that reads labels lights up the **diagonal** and stays
dark elsewhere; a discriminator that only checks "is this a real-looking digit?" gives every column the same
colour. Click a cell (or pick row and column) to see the digits behind it with their scores; compare, say,
real 4s told "9". The model is the one in use (see *Using* above): train your own or upload one to compare."""
ORDERS = {"highest": "D accepts most", "lowest": "D accepts least", "first": "first"}


def dview_summary(d_accuracy: float, judge_accuracy: float | None, summary: dict[str, float], n: int) -> str:
    """The figures beside the heat map: D as a classifier next to the judge, and the diagonal gap."""
    judge = (f"the judge (a separate digit classifier) gets **{100 * judge_accuracy:.1f} %**"
             if judge_accuracy is not None else "the judge classifier is not available here")
    return (f"**D as a classifier:** label = the one D scores highest → **{100 * d_accuracy:.1f} %** of "
            f"these {n} real test digits right; {judge} on the same digits (chance: 10 %).\n\n"
            f"Diagonal (right label) mean **{summary['diagonal_mean']:.3f}**, off-diagonal (wrong label) mean "
            f"**{summary['off_diagonal_mean']:.3f}**, gap **{summary['gap']:+.3f}**.")


class DViewTab:
    """The D's view tab's endpoints; D's score table on the fixed digits is cached per model."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self._lock = threading.Lock()
        self._tables: weakref.WeakKeyDictionary[GANCLS, torch.Tensor] = weakref.WeakKeyDictionary()
        self._digits: tuple[torch.Tensor, torch.Tensor] | None = None
        self._judge_accuracy: float | None = None

    def digits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed real test digits: DVIEW_PER_CLASS of each label, uint8 [M, 28, 28], int64 [M]."""
        with self._lock:
            if self._digits is None:
                data = self.ctx.data
                # MNIST's test file is ordered by writer group: pick from a seeded shuffle, not a prefix.
                order = torch.randperm(len(data.test_labels), generator=torch.Generator().manual_seed(0))
                idx = torch.cat([order[data.test_labels[order] == k][:DVIEW_PER_CLASS] for k in range(10)])
                self._digits = data.test_images[idx], data.test_labels[idx]
            return self._digits

    def _table(self, model: GANCLS) -> torch.Tensor:
        """D's scores [M, 10] for the fixed digits against every label (a weak key: a dropped model drops it)."""
        with self._lock:
            table = self._tables.get(model)
        if table is None:
            table = score_table(model, self.digits()[0])
            with self._lock:
                self._tables[model] = table
        return table

    def _judge_acc(self) -> float | None:
        judge = self.ctx.judge()
        if judge is None:
            return None
        if self._judge_accuracy is None:  # the judge and the digits never change: compute once
            x, y = self.digits()
            self._judge_accuracy = float((judge_predict(judge, x).predictions == y).float().mean())
        return self._judge_accuracy

    @user_errors
    def match_matrix(self, request: gr.Request) -> tuple[Any, str]:
        """The 10x10 heat map of D's mean score (true digit x label given) for the model in use, and its figures."""
        session = self.ctx.session(request)
        _, y = self.digits()
        table = self._table(self.ctx.model_for(session))  # [M, 10]
        matrix = match_matrix(table, y)  # [10, 10]
        d_acc = float((table.argmax(dim=1) == y).float().mean())
        using = self.ctx.using(session).replace("**Using:** ", "")
        text = f"Model: {using}.\n\n" + dview_summary(d_acc, self._judge_acc(), matrix_summary(matrix), len(y))
        return heatmap_image(matrix, cell=HEATMAP_CELL), text

    @user_errors
    def cell_examples(self, true_label: float, given_label: float, order: str,
                      request: gr.Request) -> tuple[list[tuple[np.ndarray, str]], str]:
        """Real digits of one true label with D's score when told another label (row i, column j of the map)."""
        if true_label is None or given_label is None:
            raise UserError("choose a true digit (row) and a label given to D (column) first")
        i, j = validate.label("True digit", true_label), validate.label("Label given to D", given_label)
        order = validate.choice("Order", order or "highest", list(ORDERS))
        model = self.ctx.model_for(self.ctx.session(request))
        x, y = self.digits()
        ex = cell_examples(model, x, y, i, j, k=10, per_class=DVIEW_PER_CLASS, order=order)
        items = [(upscale(img, 3), f"D = {s:.2f}") for img, s in zip(ex.images, ex.scores)]
        mean = float(self._table(model)[y == i, j].mean())
        right = "the right label" if i == j else "a wrong label"
        text = (f"Real **{i}**s, D told the label is **{j}** ({right}): the {len(items)} of {DVIEW_PER_CLASS} "
                f"{ORDERS[order]}. Mean over all {DVIEW_PER_CLASS}: **{mean:.3f}**.")
        return items, text

    def pick_cell(self, evt: gr.SelectData) -> tuple[Any, Any]:
        """The (row, column) dropdown values for a click on the heat map (unchanged outside the cells)."""
        cell = heatmap_cell_at(*evt.index[:2]) if isinstance(evt.index, (list, tuple)) else None
        return (cell[0], cell[1]) if cell else (gr.skip(), gr.skip())

    def build(self) -> None:
        """Lay out the tab inside the page's gr.Tabs and wire it."""
        with gr.Tab("5 · D's view", id="dview") as tab:
            gr.Markdown(DVIEW_HELP, elem_classes="help")
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    dview_btn = gr.Button("Show D's view of the model in use", variant="primary", elem_id="dview-btn")
                    heat = gr.Image(show_label=False, format="png", interactive=False, elem_id="dview-heat",
                                    buttons=["download", "fullscreen"])
                    text = gr.Markdown(elem_id="dview-text")
                with gr.Column(scale=4):
                    with gr.Row():
                        row = gr.Dropdown([(str(k), k) for k in range(10)], value=4, label="True digit (row)",
                                          elem_id="cell-row", min_width=100)
                        col = gr.Dropdown([(str(k), k) for k in range(10)], value=9, label="Label given to D (column)",
                                          elem_id="cell-col", min_width=100)
                        order = gr.Radio([("most accepted", "highest"), ("least accepted", "lowest")], value="highest",
                                         label="Show", elem_id="cell-order", min_width=160)
                    cell_btn = gr.Button("Show these digits", elem_id="cell-btn")
                    cell_text = gr.Markdown(elem_id="cell-text")
                    cell_gallery = gr.Gallery(columns=5, height="auto", allow_preview=False, format="png",
                                              show_label=False, elem_id="cell-gallery")
        dview_btn.click(self.match_matrix, None, [heat, text], api_name="match_matrix", **INFER)
        tab.select(self.match_matrix, None, [heat, text], **PRIVATE, **INFER)
        cell_btn.click(self.cell_examples, [row, col, order], [cell_gallery, cell_text], api_name="cell_examples",
                       **INFER)
        heat.select(self.pick_cell, None, [row, col], **PRIVATE).then(
            self.cell_examples, [row, col, order], [cell_gallery, cell_text], **PRIVATE, **INFER)
