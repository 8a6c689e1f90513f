"""`gancls eval`: judge-based quality of a checkpoint's samples (or a samples .npz) in one report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .data import load_mnist
from .evaluate import evaluate_samples, mismatch_auc
from .judge import load_judge
from .probe import match_scores
from .sampling import label_grid


def _load_npz(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a samples .npz with 'images' and 'labels' ({e})") from None
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
        raise ValueError(f"{path}: 'images' must be uint8 N x 28 x 28 with N labels (got {images.shape} {images.dtype})")
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def evaluate_path(path: str | os.PathLike, *, per_label: int = 500, seed: int = 0,
                  data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Metrics for a checkpoint (samples `per_label` per digit, plus D's mismatch AUC) or a samples .npz."""
    p = Path(path)
    data = load_mnist(data_dir, allow_download=False)
    judge = load_judge()
    report: dict[str, Any] = {"source": str(p), "real_data": data.description}
    if p.suffix == ".npz":
        images, labels = _load_npz(p)
    else:
        ckpt = load_checkpoint(p)
        images, labels = label_grid(ckpt.model, range(10), per_label, seed)
        report.update(step=ckpt.step, arch=ckpt.model.cfg.arch,
                      objective=ckpt.meta.get("train_config", {}).get("objective"))
        report["mismatch_auc"] = mismatch_auc(lambda x, y: match_scores(ckpt.model, x, y), data.test_images,
                                              data.test_labels, torch.Generator().manual_seed(seed))
    report.update(evaluate_samples(images, labels, judge, data.test_images, data.test_labels))
    return report
