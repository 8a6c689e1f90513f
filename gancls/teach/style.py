"""Style versus label: keep the noise and change the label, or keep the label and move the noise."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import validate
from ..errors import UserError
from ..models import GANCLS
from ..sampling import sample, to_uint8

_REFERENCE_BATCH = 64  # arch="seed" normalises with batch statistics: decode among a training-like batch


def style_grid(model: GANCLS, n_styles: int, labels: Sequence[int], seed: int) -> np.ndarray:
    """uint8 digits [n_styles, len(labels), 28, 28]: row r keeps one noise vector, column c is labels[c]."""
    n_styles = validate.whole("number of styles", n_styles, 1, 16)
    y = validate.labels(labels, model.cfg.num_classes)
    if len(y) > 32:
        raise UserError(f"choose at most 32 labels for a style grid (got {len(y)})")
    g = torch.Generator().manual_seed(validate.seed("seed", seed))
    noise = model.noise(n_styles, g).repeat_interleave(len(y), dim=0)  # [S*L, noise_dim]: row r = style r
    images = sample(model, y.repeat(n_styles), g, noise=noise)  # [S*L, 28, 28]
    return images.view(n_styles, len(y), 28, 28).numpy()


@torch.no_grad()
def _decode(model: GANCLS, codes: torch.Tensor, noise: torch.Tensor) -> np.ndarray:
    """G in eval mode from label codes [N, k] (may be soft) and noise [N, noise_dim] -> uint8 [N, 28, 28]."""
    device = next(model.parameters()).device
    z = torch.cat([codes, noise], dim=1).to(device)  # [N, k + noise_dim]
    n = len(z)
    if model.cfg.batch_stats_always:
        # A strip of near-identical inputs would give degenerate batch statistics, so decode it
        # together with a fixed batch of ordinary (label, noise) pairs, as the seed trained.
        g = torch.Generator().manual_seed(0)
        ref_y = torch.randint(model.cfg.num_classes, (_REFERENCE_BATCH,), generator=g)
        ref = torch.cat([F.one_hot(ref_y, model.cfg.num_classes).float(), model.noise(_REFERENCE_BATCH, g)], 1)
        z = torch.cat([z, ref.to(device)])
    was_training = model.G.training
    model.G.eval()
    try:
        return to_uint8(model.G.decode(z)[:n]).numpy()  # [N, 28, 28]
    finally:
        model.G.train(was_training)


def label_interpolation(model: GANCLS, a: int, b: int, steps: int, seed: int) -> np.ndarray:
    """uint8 strip [steps, 28, 28]: one noise vector, label code (1-t)·onehot(a) + t·onehot(b), t from 0 to 1.

    The noise is the one `sample(model, [a], torch.Generator().manual_seed(seed))` would draw,
    so the two ends are exactly the plain samples of a and of b with that seed.
    """
    k = model.cfg.num_classes
    a, b = validate.label("start label", a, k), validate.label("end label", b, k)
    steps = validate.whole("number of steps", steps, 2, 64)
    noise = model.noise(1, torch.Generator().manual_seed(validate.seed("seed", seed)))  # [1, noise_dim]
    t = torch.linspace(0, 1, steps).unsqueeze(1)  # [steps, 1]: exactly 0 and 1 at the ends
    eye = torch.eye(k)
    codes = (1 - t) * eye[a] + t * eye[b]  # [steps, k]
    return _decode(model, codes, noise.expand(steps, -1))


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation [T, D] between vectors z0, z1 [D] at fractions t [T] (linear if parallel)."""
    a, b = z0.double(), z1.double()
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    tt = t.double().unsqueeze(1)  # [T, 1]
    if omega.abs() < 1e-6 or (torch.pi - omega).abs() < 1e-6:  # (anti)parallel: no unique great circle
        out = (1 - tt) * a + tt * b
    else:
        out = (torch.sin((1 - tt) * omega) * a + torch.sin(tt * omega) * b) / torch.sin(omega)
    out = out.to(z0.dtype)
    out[t == 0], out[t == 1] = z0, z1  # exact ends, whatever the rounding
    return out


def noise_interpolation(model: GANCLS, label: int, steps: int, seed_a: int, seed_b: int) -> np.ndarray:
    """uint8 strip [steps, 28, 28]: one label, noise moving on a great circle from seed_a's to seed_b's.

    Gaussian noise concentrates near a sphere, so slerp stays where G was trained; the two ends
    are the plain samples of `label` with seed_a and with seed_b.
    """
    k = model.cfg.num_classes
    label = validate.label("label", label, k)
    steps = validate.whole("number of steps", steps, 2, 64)
    za = model.noise(1, torch.Generator().manual_seed(validate.seed("first seed", seed_a)))[0]  # [noise_dim]
    zb = model.noise(1, torch.Generator().manual_seed(validate.seed("second seed", seed_b)))[0]
    noise = slerp(za, zb, torch.linspace(0, 1, steps))  # [steps, noise_dim]
    codes = torch.eye(k)[label].expand(steps, -1)  # [steps, k]
    return _decode(model, codes, noise)
