"""Checks for values that cross a boundary (CLI flags, app fields, API calls, public functions).

Each returns the value in its canonical type or raises UserError naming the field and the allowed
range. Inside the library values are trusted: check once, where they come in.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np
import torch

from .errors import UserError

MAX_SEED = 2**63 - 1


def whole(name: str, value: Any, low: int, high: int) -> int:
    """`value` as an int in [low, high]; integral floats (3.0, from sliders and JSON) are accepted."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        high_text = "2**63-1" if high == MAX_SEED else f"{high:,}"
        raise UserError(f"{name} must be a whole number from {low:,} to {high_text} (got {value!r})")
    return int(value)


def number(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    """`value` as a finite float in [low, high] (or (low, high] with `low_open`)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (low < value if low_open else low <= value) or value > high:
        lo = f"greater than {low:g}" if low_open else f"from {low:g}"
        raise UserError(f"{name} must be a number {lo} {'and at most' if low_open else 'to'} {high:g} (got {value!r})")
    return float(value)


def limit(name: str, value: Any, high: float, *, integer: bool = False) -> float | int | None:
    """An optional limit: empty, None or 0 means 'no limit' (None); else a positive number up to `high`."""
    if value is None or value == "" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return None
    if integer:
        return whole(name, value, 1, int(high))
    return number(name, value, 0, high, low_open=True)


def seed(name: str, value: Any) -> int:
    """A seed for torch.Generator.manual_seed."""
    return whole(name, value, 0, MAX_SEED)


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    """One of `options`."""
    if value not in options:
        raise UserError(f"{name} must be one of {', '.join(options)} (got {value!r})")
    return value


def label(name: str, value: Any, num_classes: int = 10) -> int:
    """One digit label."""
    if value is None or value == "":
        raise UserError(f"no {name.lower()} chosen: pick a digit from 0 to {num_classes - 1}")
    return whole(name, value, 0, num_classes - 1)


def labels(values: Any, num_classes: int = 10, max_count: int | None = None) -> torch.Tensor:
    """Labels as int64 [N]: at least one, each a whole number in 0..num_classes-1, at most `max_count`."""
    try:
        t = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError, OverflowError):  # None, text, numbers beyond int64
        raise UserError(f"labels must be whole numbers from 0 to {num_classes - 1}") from None
    if t.numel() == 0:
        raise UserError("no labels chosen: pick at least one digit from 0 to 9")
    if max_count is not None and t.numel() > max_count:
        raise UserError(f"at most {max_count:,} labels at a time (got {t.numel():,})")
    if t.dtype == torch.bool or t.is_complex() or (t.is_floating_point() and not torch.equal(t, t.round())):
        raise UserError(f"labels must be whole numbers from 0 to {num_classes - 1}")
    t = t.to(torch.int64).flatten()
    bad = t[(t < 0) | (t >= num_classes)]
    if len(bad):
        raise UserError(f"label {int(bad[0])} is outside 0..{num_classes - 1}")
    return t


def digits(images: Any, what: str = "images") -> torch.Tensor:
    """uint8 digits [N, 28, 28] (tensor or array; [28, 28] and [N, 1, 28, 28] accepted) as a CPU tensor."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.dim() == 2:
        x = x[None]
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dtype != torch.uint8 or x.dim() != 3 or tuple(x.shape[1:]) != (28, 28):
        raise UserError(f"{what} must be uint8 digits of shape [N, 28, 28] (got {tuple(x.shape)} {x.dtype})")
    return x.cpu()


def labels_for(values: Any, n: int, what: str = "labels", num_classes: int = 10) -> torch.Tensor:
    """int64 labels [n] in 0..num_classes-1, one per image."""
    y = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if y.is_floating_point() or y.dim() != 1 or len(y) != n:
        raise UserError(f"{what} must be {n} whole-number labels, one per image (got {tuple(y.shape)} {y.dtype})")
    y = y.to(torch.int64).cpu()
    if n and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise UserError(f"{what} must lie in 0..{num_classes - 1}")
    return y
