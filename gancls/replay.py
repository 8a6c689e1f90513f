"""A recorded training, saved beside a checkpoint so a class can watch it again: curves, grids, evaluations.

    save_replay("checkpoints/pretrained", metrics=trainer.history, grids=frames, evals=log, meta={...})
    replay = load_replay("checkpoints/pretrained")   # None when the directory has none
    replay.grids[i]      # uint8 [N, 28, 28]: the fixed-noise grid at step replay.steps[i]
    replay.metrics       # Metrics dicts (gancls.train.Metrics.to_dict), oldest first

One file, `replay.npz`: numpy's zip of arrays (deflate-compressed, read with allow_pickle=False,
so loading runs no code) holding the grids as uint8, their steps, and one JSON string for the rest.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import UserError

FILENAME = "replay.npz"
MAX_REPLAY_BYTES = 8 * 2**20  # twice the shipped budget: a bigger file is not a replay we wrote


class ReplayError(UserError):
    """A replay file we cannot read."""


@dataclass(frozen=True)
class Replay:
    """A training run as recorded: grid i shows the fixed noise at step steps[i]."""

    steps: list[int]
    grids: list[torch.Tensor]  # each uint8 [N, 28, 28], N = rows x cols (one row per label)
    cols: int
    metrics: list[dict[str, float]]
    evals: list[dict[str, Any]] = field(default_factory=list)  # gancls.report.evaluate_model figures with "step"
    meta: dict[str, Any] = field(default_factory=dict)


def replay_path(directory: str | os.PathLike) -> Path:
    """Where a checkpoint directory keeps its replay."""
    return Path(directory) / FILENAME


def save_replay(directory: str | os.PathLike, *, grids: Sequence[tuple[int, torch.Tensor]], cols: int,
                metrics: Sequence[dict[str, float]], evals: Sequence[dict[str, Any]] = (),
                meta: dict[str, Any] | None = None) -> Path:
    """Write `directory/replay.npz` from (step, uint8 [N, 28, 28]) grids in step order; returns the path."""
    if not grids:
        raise ValueError("a replay needs at least one grid")
    steps = [int(s) for s, _ in grids]
    if steps != sorted(steps):
        raise ValueError("replay grids must be in step order")
    stacked = torch.stack([g.to(torch.uint8).reshape(-1, 28, 28).cpu() for _, g in grids]).numpy()  # [F, N, 28, 28]
    info = {"cols": int(cols), "metrics": list(metrics), "evals": list(evals), "meta": dict(meta or {})}
    path = replay_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, steps=np.asarray(steps, dtype=np.int64), grids=stacked,
                        info=np.asarray(json.dumps(info)))
    os.replace(tmp, path)
    return path


def load_replay(directory: str | os.PathLike) -> Replay | None:
    """The replay kept in `directory`, or None if there is none. A damaged file raises ReplayError."""
    path = replay_path(directory)
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_REPLAY_BYTES:
        raise ReplayError(f"{path.name} is {path.stat().st_size / 2**20:.1f} MB; a replay is at most "
                          f"{MAX_REPLAY_BYTES // 2**20} MB")
    try:
        with np.load(path, allow_pickle=False) as z:
            steps, grids, info = z["steps"], z["grids"], json.loads(str(z["info"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ReplayError(f"{path.name} is not a readable replay ({type(e).__name__})") from None
    if grids.dtype != np.uint8 or grids.ndim != 4 or grids.shape[2:] != (28, 28) or len(steps) != len(grids):
        raise ReplayError(f"{path.name} holds grids of shape {tuple(grids.shape)}; expected [frames, N, 28, 28]")
    return Replay(steps=[int(s) for s in steps], grids=[torch.from_numpy(g.copy()) for g in grids],
                  cols=int(info["cols"]), metrics=list(info.get("metrics", [])), evals=list(info.get("evals", [])),
                  meta=dict(info.get("meta", {})))


__all__ = ["FILENAME", "Replay", "ReplayError", "load_replay", "replay_path", "save_replay"]
