"""One model's report card for the ablation: judge metrics of its samples and D's label reading."""

from __future__ import annotations

import time
from typing import Any

import torch

from ..evaluate import evaluate_samples, mismatch_auc
from ..models import GANCLS
from ..probe import match_scores
from ..sampling import label_grid
from ._common import TeachError, as_digits, as_labels, check_int, check_seed
from .dview import d_classifier_accuracy, match_matrix, matrix_summary

TABLE_COLUMNS = ("objective", "steps", "seconds", "label accuracy", "mismatch AUC", "D-as-classifier acc.",
                 "FD", "diversity", "diag - off-diag")


def eval_subset(data: Any, eval_digits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of the test digits (the same for every model): uint8 [M, 28, 28], int64 [M]."""
    x = as_digits(data.test_images, "test images")
    y = as_labels(data.test_labels, len(x), "test labels")
    if len(x) < 10:
        raise TeachError(f"evaluation needs at least 10 test digits (the data has {len(x)})")
    # MNIST's test file is ordered by writer group, so a prefix would not be representative.
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:eval_digits].sort().values
    return x[idx], y[idx]


def evaluate_model(model: GANCLS, data: Any, judge: Any = None, samples_per_label: int = 100,
                   eval_digits: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Metrics of one model as a JSON-able dict.

    Keys: label_accuracy, label_accuracy_per_label, judge_confidence, frechet_distance, diversity
    (judge-read quality of `samples_per_label` samples per digit against the test digits; None
    without a judge), mismatch_auc (D separates (real test digit, its label) from (same digit, a
    wrong label): 0.5 = blind to the label), d_classifier_accuracy (argmax over D's ten scores),
    match_matrix [10][10] with diagonal_mean, off_diagonal_mean, gap; n_eval_digits, eval_seconds.
    """
    samples_per_label = check_int("samples per label", samples_per_label, 1, 1000)
    eval_digits = check_int("test digits for evaluation", eval_digits, 10, 10**6)
    seed = check_seed("seed", seed)
    t0 = time.perf_counter()
    test_x, test_y = eval_subset(data, eval_digits)
    out: dict[str, Any] = {}
    if judge is not None:
        images, labels = label_grid(model, list(range(model.cfg.num_classes)), samples_per_label, seed=seed)
        q = evaluate_samples(images, labels, judge, test_x, test_y)
        out.update({k: q[k] for k in ("label_accuracy", "label_accuracy_per_label", "judge_confidence",
                                      "frechet_distance", "diversity")})
    else:
        out.update(dict.fromkeys(("label_accuracy", "label_accuracy_per_label", "judge_confidence",
                                  "frechet_distance", "diversity")))
    out["mismatch_auc"] = mismatch_auc(lambda x, y: match_scores(model, x, y), test_x, test_y,
                                       torch.Generator().manual_seed(seed))
    out["d_classifier_accuracy"] = d_classifier_accuracy(model, test_x, test_y)
    per_class = min(100, int(torch.bincount(test_y, minlength=10).min()))
    if per_class < 1:
        raise TeachError("the evaluation digits lack at least one label; use more test digits")
    matrix = match_matrix(model, test_x, test_y, per_class=per_class)
    out["match_matrix"] = matrix.round(4).tolist()
    out.update(matrix_summary(matrix))
    out["n_eval_digits"] = len(test_x)
    out["eval_seconds"] = round(time.perf_counter() - t0, 2)
    return out


def results_table(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of the ablation's headline numbers, one row per arm, for printing or a table view."""
    def num(v: Any, digits: int = 3) -> Any:
        return None if v is None else round(float(v), digits)

    rows = [[r.get("objective", arm), r.get("steps"), num(r.get("train_seconds"), 1), num(r.get("label_accuracy")),
             num(r.get("mismatch_auc")), num(r.get("d_classifier_accuracy")), num(r.get("frechet_distance"), 2),
             num(r.get("diversity")), num(r.get("gap"))] for arm, r in results.items()]
    return list(TABLE_COLUMNS), rows
