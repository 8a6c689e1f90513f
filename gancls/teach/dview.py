"""The discriminator's view: how strongly D says "real and matching" for every (digit, label) pair."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from .. import report, validate
from ..errors import UserError
from ..models import GANCLS
from ..probe import score_table

def label_score_table(model: GANCLS, images_u8: Any) -> np.ndarray:
    """D's score for every image against every label: float32 [N, num_classes] (see probe.score_table)."""
    return score_table(model, images_u8).numpy()


def _pool(labels: torch.Tensor, i: int, per_class: int) -> torch.Tensor:
    """Indices of the first `per_class` digits of true label i (fixed, so views agree)."""
    idx = torch.nonzero(labels == i).flatten()[:per_class]
    if len(idx) == 0:
        raise UserError(f"there is no digit with true label {i} among the images given")
    return idx


def match_matrix(model: GANCLS, images_u8: Any, labels: Any, per_class: int = 100) -> np.ndarray:
    """Mean D score [10, 10]: row i = real digits of true label i, column j = the label D is told."""
    x = validate.digits(images_u8)
    y = validate.labels_for(labels, len(x), num_classes=model.cfg.num_classes)
    per_class = validate.whole("digits per class", per_class, 1, 10_000)
    keep = torch.cat([_pool(y, i, per_class) for i in range(model.cfg.num_classes)])
    return report.match_matrix(score_table(model, x[keep]), y[keep])


def d_classifier_accuracy(model: GANCLS, images_u8: Any, labels: Any) -> float:
    """Share of digits whose highest-scoring label under D is their true label (D used as a classifier)."""
    x = validate.digits(images_u8)
    y = validate.labels_for(labels, len(x), num_classes=model.cfg.num_classes)
    if len(x) == 0:
        raise UserError("d_classifier_accuracy needs at least one image")
    return float((score_table(model, x).argmax(dim=1) == y).float().mean())


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
    x = validate.digits(images_u8)
    y = validate.labels_for(labels, len(x), num_classes=model.cfg.num_classes)
    i, j = validate.label("true label", i), validate.label("label given to D", j)
    k = validate.whole("number of examples", k, 1, 64)
    per_class = validate.whole("digits per class", per_class, 1, 10_000)
    if order not in ("highest", "lowest", "first"):
        raise UserError(f"order must be 'highest', 'lowest' or 'first' (got {order!r})")
    idx = _pool(y, i, per_class)
    scores = score_table(model, x[idx])[:, j].numpy()  # [P]
    pick = {"highest": np.argsort(-scores, kind="stable"), "lowest": np.argsort(scores, kind="stable"),
            "first": np.arange(len(scores))}[order][:k]
    return CellExamples(x[idx[pick]].numpy(), scores[pick].astype(np.float32), idx[pick].numpy())
