"""Ask the discriminator how well an image matches a label."""

from __future__ import annotations

import numpy as np
import torch

from .models import GANCLS
from .sampling import check_labels


def _as_batch(images_u8: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images_u8) if not isinstance(images_u8, torch.Tensor) else images_u8)
    if x.dtype != torch.uint8 or x.shape[-2:] != (28, 28):
        raise ValueError(f"expected uint8 digits of 28x28, got {tuple(x.shape)} {x.dtype}")
    return x.reshape(-1, 1, 28, 28).float() / 255  # [N, 1, 28, 28]


@torch.no_grad()
def match_scores(model: GANCLS, images_u8: torch.Tensor | np.ndarray, labels) -> torch.Tensor:
    """D's score in [0, 1] for each (image, label) pair: high = a real digit matching its label."""
    x = _as_batch(images_u8)
    y = check_labels(labels, model.cfg.num_classes)
    if len(y) == 1 and len(x) > 1:
        y = y.expand(len(x))
    if len(y) != len(x):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    return model.match_scores(x, y).cpu()


@torch.no_grad()
def label_scores(model: GANCLS, image_u8: torch.Tensor | np.ndarray) -> torch.Tensor:
    """D's scores [10] for one 28x28 image against every label."""
    x = _as_batch(image_u8)
    if len(x) != 1:
        raise ValueError("label_scores takes one image")
    k = model.cfg.num_classes
    return model.match_scores(x.expand(k, -1, -1, -1), torch.arange(k)).cpu()
