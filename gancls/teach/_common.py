"""Argument checks and small conversions shared by the teaching views."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class TeachError(ValueError):
    """An argument to a teaching view is missing, of the wrong kind, or out of range."""


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """`value` as an int in [low, high], or a TeachError naming `name` and the range."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer():
        ok, value = True, int(value)  # sliders hand over 8.0 for 8
    if not ok or not low <= int(value) <= high:
        raise TeachError(f"{name} must be a whole number from {low} to {high} (got {value!r})")
    return int(value)


def check_seed(name: str, value: Any) -> int:
    """A seed for torch.Generator.manual_seed: a whole number from 0 to 2**63 - 1."""
    return check_int(name, value, 0, 2**63 - 1)


def check_label(name: str, value: Any, num_classes: int = 10) -> int:
    """One digit label from 0 to num_classes - 1."""
    return check_int(name, value, 0, num_classes - 1)


def as_digits(images: Any, what: str = "images") -> torch.Tensor:
    """uint8 digits [N, 28, 28] (tensor or array; [N, 1, 28, 28] accepted) as a CPU tensor."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dtype != torch.uint8 or x.dim() != 3 or tuple(x.shape[1:]) != (28, 28):
        raise TeachError(f"{what} must be uint8 digits of shape [N, 28, 28] (got {tuple(x.shape)} {x.dtype})")
    return x.cpu()


def as_labels(labels: Any, n: int, what: str = "labels", num_classes: int = 10) -> torch.Tensor:
    """int64 labels [n] in 0..num_classes-1 as a CPU tensor."""
    y = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    if y.is_floating_point() or y.dim() != 1 or len(y) != n:
        raise TeachError(f"{what} must be {n} whole-number labels, one per image (got {tuple(y.shape)} {y.dtype})")
    y = y.to(torch.int64).cpu()
    if n and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise TeachError(f"{what} must lie in 0..{num_classes - 1}")
    return y
