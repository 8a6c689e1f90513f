"""Ask the discriminator how well images match labels: one label each, or every label at once."""

from __future__ import annotations

from typing import Any

import torch

from . import validate
from .errors import UserError
from .models import GANCLS


def _as_batch(images_u8: Any) -> torch.Tensor:
    return validate.digits(images_u8).unsqueeze(1).float() / 255  # [N, 1, 28, 28]


@torch.no_grad()
def match_scores(model: GANCLS, images_u8: Any, labels: Any) -> torch.Tensor:
    """D's score in [0, 1] for each (image, label) pair: high = a real digit matching its label."""
    x = _as_batch(images_u8)
    y = validate.labels(labels, model.cfg.num_classes)
    if len(y) == 1 and len(x) > 1:
        y = y.expand(len(x))
    if len(y) != len(x):
        raise UserError(f"{len(x)} images but {len(y)} labels")
    return model.match_scores(x, y).cpu()


@torch.no_grad()
def score_table(model: GANCLS, images_u8: Any, chunk: int = 500) -> torch.Tensor:
    """D's score for every image against every label: float32 [N, num_classes] in [0, 1].

    The one place that asks D about all labels: Probe's bar chart, D's view and the evaluation use it.
    """
    x = validate.digits(images_u8)
    k = model.cfg.num_classes
    out = [torch.zeros(0, k)]
    for part in x.split(chunk):
        b = len(part)
        imgs = part.float().div(255).unsqueeze(1).repeat_interleave(k, dim=0)  # [b*k, 1, 28, 28]
        ys = torch.arange(k).repeat(b)  # [b*k]: image 0 with labels 0..k-1, then image 1, ...
        out.append(model.match_scores(imgs, ys).view(b, k).float().cpu())
    return torch.cat(out)


def label_scores(model: GANCLS, image_u8: Any) -> torch.Tensor:
    """D's scores [num_classes] for one 28x28 image against every label."""
    x = validate.digits(image_u8)
    if len(x) != 1:
        raise UserError("label_scores takes one image")
    return score_table(model, x)[0]
