"""One evaluation protocol for a model, used by `gancls eval`, the ablation, the benchmarks and the
pretrained-model script: judge figures of its samples and how well its D reads labels."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import validate
from .checkpoint import load_checkpoint
from .data import load_mnist
from .errors import UserError
from .evaluate import evaluate_samples, mismatch_auc
from .judge import load_judge
from .models import GANCLS
from .probe import match_scores, score_table
from .sampling import label_grid

SAMPLE_KEYS = ("label_accuracy", "label_accuracy_per_label", "judge_confidence", "frechet_distance", "diversity",
               "nn_diversity")


def eval_subset(data: Any, eval_digits: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of the test digits (the same for every model): uint8 [M, 28, 28], int64 [M].

    None = all of them. MNIST's test file is ordered by writer group, so a prefix would not be representative.
    """
    x, y = data.test_images, data.test_labels
    if eval_digits is None or eval_digits >= len(x):
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:eval_digits].sort().values
    return x[idx], y[idx]


def match_matrix(table: torch.Tensor, labels: torch.Tensor, per_class: int | None = None) -> np.ndarray:
    """Mean D score [10, 10] from a score_table: row i = real digits of true label i, column j = the label told.

    `per_class`: only the first that many digits of each label (fixed, so views agree).
    """
    rows = []
    for i in range(table.shape[1]):
        idx = torch.nonzero(labels == i).flatten()[:per_class]
        if len(idx) == 0:
            raise UserError(f"there is no digit with true label {i} among the images given")
        rows.append(table[idx].mean(dim=0))
    return torch.stack(rows).numpy()  # [10, 10]


def matrix_summary(matrix: np.ndarray) -> dict[str, float]:
    """Diagonal mean, off-diagonal mean and their gap: one number for "does D read the label?"."""
    m = np.asarray(matrix, dtype=np.float64)
    off = ~np.eye(len(m), dtype=bool)
    diag, rest = float(np.diag(m).mean()), float(m[off].mean())
    return {"diagonal_mean": diag, "off_diagonal_mean": rest, "gap": diag - rest}


@torch.no_grad()
def evaluate_model(model: GANCLS, data: Any, judge: Any = None, *, per_label: int = 100,
                   eval_digits: int | None = 2000, seed: int = 0) -> dict[str, Any]:
    """Metrics of one model as a JSON-able dict (the model is left in the mode it was in).

    Samples: `per_label` per digit (noise seed `seed`), read by the judge against the real test
    digits: label_accuracy (+ per label), judge_confidence, frechet_distance, diversity,
    nn_diversity (None without a judge). D, on a fixed subset of `eval_digits` test digits (None
    = all): mismatch_auc (D separates (digit, its label) from (digit, a wrong label); 0.5 = blind
    to the label), d_classifier_accuracy (argmax over D's ten scores), match_matrix [10][10] with
    diagonal_mean, off_diagonal_mean, gap; n_eval_digits, eval_seconds.
    """
    per_label = validate.whole("samples per label", per_label, 1, 10_000)
    if eval_digits is not None:
        eval_digits = validate.whole("test digits for evaluation", eval_digits, 10, 10**6)
    seed = validate.seed("seed", seed)
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        test_x, test_y = eval_subset(data, eval_digits)
        out: dict[str, Any] = dict.fromkeys(SAMPLE_KEYS)
        if judge is not None:
            images, labels = label_grid(model, range(model.cfg.num_classes), per_label, seed)
            q = evaluate_samples(images, labels, judge, test_x, test_y)
            out.update(q)
        out["mismatch_auc"] = mismatch_auc(lambda x, y: match_scores(model, x, y), test_x, test_y,
                                           torch.Generator().manual_seed(seed))
        table = score_table(model, test_x)  # [M, 10]
        out["d_classifier_accuracy"] = float((table.argmax(dim=1) == test_y).float().mean())
        matrix = match_matrix(table, test_y)
    finally:
        model.train(was_training)
    out["match_matrix"] = matrix.round(4).tolist()
    out.update(matrix_summary(matrix))
    out["n_eval_digits"] = len(test_x)
    out["eval_seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _load_npz(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"{path.name}: not a samples .npz with 'images' and 'labels' ({e})") from None
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
        raise UserError(f"{path.name}: 'images' must be uint8 N x 28 x 28 with N labels "
                        f"(got {images.shape} {images.dtype})")
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def evaluate_path(path: str | os.PathLike, *, per_label: int = 500, seed: int = 0,
                  data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """`gancls eval`: evaluate_model for a checkpoint (all test digits), or the judge figures of a samples .npz."""
    p = Path(path)
    data = load_mnist(data_dir, allow_download=False)
    judge = load_judge()
    report: dict[str, Any] = {"source": str(p), "real_data": data.description}
    if p.suffix == ".npz":
        images, labels = _load_npz(p)
        report.update(evaluate_samples(images, labels, judge, data.test_images, data.test_labels))
        return report
    ckpt = load_checkpoint(p)
    report.update(step=ckpt.step, arch=ckpt.model.cfg.arch,
                  objective=ckpt.meta.get("train_config", {}).get("objective"))
    report.update(evaluate_model(ckpt.model, data, judge, per_label=per_label, eval_digits=None, seed=seed))
    return report
