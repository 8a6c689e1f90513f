"""Teaching views: the ablation, the discriminator's view, style versus label, and the training timeline.

Each view is one function (or, for the ablation, one class) returning plain data: numpy arrays,
PIL images, dicts and file paths, ready for a UI to show.
"""

from __future__ import annotations

from ..report import evaluate_model, matrix_summary
from .ablation import Ablation, Evaluated, results_table
from .dview import CellExamples, cell_examples, d_classifier_accuracy, label_score_table, match_matrix
from .style import label_interpolation, noise_interpolation, slerp, style_grid
from .timeline import history_csv, timeline_animation

__all__ = [
    "Ablation", "Evaluated", "CellExamples", "cell_examples", "d_classifier_accuracy",
    "label_score_table", "match_matrix", "matrix_summary", "evaluate_model", "results_table",
    "label_interpolation", "noise_interpolation", "slerp", "style_grid", "history_csv",
    "timeline_animation",
]
