"""Teaching views: the ablation, the discriminator's view, style versus label, and the training timeline.

Each view is one function (or, for the ablation, one class) returning plain data: numpy arrays,
PIL images, dicts and file paths, ready for a UI to show.
"""

from __future__ import annotations

from ._common import TeachError
from .ablation import Ablation, Evaluated
from .dview import (CellExamples, cell_examples, d_classifier_accuracy, heatmap_image, label_score_table,
                    match_matrix, matrix_summary)
from .evaluation import evaluate_model, results_table
from .style import label_interpolation, noise_interpolation, slerp, style_grid, tile
from .timeline import history_csv, timeline_animation

__all__ = [
    "TeachError", "Ablation", "Evaluated", "CellExamples", "cell_examples", "d_classifier_accuracy",
    "heatmap_image", "label_score_table", "match_matrix", "matrix_summary", "evaluate_model", "results_table",
    "label_interpolation", "noise_interpolation", "slerp", "style_grid", "tile", "history_csv",
    "timeline_animation",
]
