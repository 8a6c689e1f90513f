"""Inference: conditioned samples as uint8 digits and PNG grids, with an explicit torch.Generator."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from . import validate
from .models import GANCLS


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[N, 1, 28, 28] floats in [0, 1] -> uint8 [N, 28, 28] on the CPU."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1).cpu()


@torch.no_grad()
def sample(model: GANCLS, labels: Sequence[int] | torch.Tensor, generator: torch.Generator,
           noise: torch.Tensor | None = None, chunk: int = 64, max_chunk: int = 4096) -> torch.Tensor:
    """uint8 digits [N, 28, 28] for labels [N], noise drawn from `generator` unless given.

    Generated `max_chunk` at a time, so memory stays flat whatever N (the result is the same).

    The seed's G normalises with batch statistics even when sampling, so for arch="seed" we
    generate in shuffled mixed-label batches of `chunk` (as its training batches were).
    """
    y = validate.labels(labels, model.cfg.num_classes)
    if noise is None:
        noise = model.noise(len(y), generator)  # [N, noise_dim], drawn on the generator's device
    if not model.cfg.batch_stats_always:  # each digit on its own: chunks only bound the memory
        out = torch.empty(len(y), 28, 28, dtype=torch.uint8)
        for i in range(0, len(y), max_chunk):
            out[i:i + max_chunk] = to_uint8(model.sample(y[i:i + max_chunk], noise=noise[i:i + max_chunk]))
        return out
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(generator.initial_seed())))
    out = torch.empty(len(y), 28, 28, dtype=torch.uint8)
    for idx in order.split(chunk):
        out[idx] = to_uint8(model.sample(y[idx], noise=noise[idx]))
    return out


def label_grid(model: GANCLS, labels: Sequence[int], per_label: int, seed: int,
               same_noise: bool = False, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples [len(labels) * per_label, 28, 28] in rows by label, and their labels.

    With `same_noise`, column j uses one noise vector for every label: one style, ten digits.
    """
    y = validate.labels(labels, model.cfg.num_classes)
    per_label = validate.whole("samples per label", per_label, 1, 10_000)
    g = torch.Generator().manual_seed(validate.seed("seed", seed))
    if same_noise:
        noise = model.noise(per_label, g).repeat(len(y), 1)  # [L*P, noise_dim]
    else:
        noise = model.noise(len(y) * per_label, g)
    y = y.repeat_interleave(per_label)
    return sample(model, y, g, noise=noise, max_chunk=chunk), y


def grid_image(images: torch.Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """uint8 digits [N, H, W] -> one uint8 grid image, `nrow` digits per row, `padding` px of grey around each.

    The layout of torchvision's make_grid (pad value 64), written here because importing torchvision
    (which also imports torch._dynamo) added seconds to the app's start for this one function.
    """
    digits = images.detach().cpu().numpy()  # [N, H, W]
    if digits.dtype != np.uint8 or digits.ndim != 3:
        raise ValueError(f"grid_image needs uint8 digits [N, H, W] (got {digits.dtype} {digits.shape})")
    n, h, w = digits.shape
    cols = max(1, min(nrow, n))
    rows = -(-n // cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding), 64, dtype=np.uint8)
    for k, digit in enumerate(digits):
        r, c = divmod(k, cols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top:top + h, left:left + w] = digit
    return grid


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 grayscale array as PNG, atomically (a full disk leaves no 0-byte file)."""
    write_atomic(path, lambda f: Image.fromarray(array, mode="L").save(f, format="PNG"))


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temp file beside `path`, then rename it over `path`: whole or absent."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
