"""Checkpoints: one safetensors file (weights, optimiser and RNG state, JSON metadata in its header)
plus a human-readable JSON copy of the metadata beside it. Saved atomically, loaded without pickle.

A run directory holds `gancls.safetensors` and `gancls.json`. The metadata inside the safetensors
header is the authoritative copy, so a checkpoint file is self-describing on its own.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import ModelConfig, validate_model
from .models import GANCLS

FORMAT = "gancls-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_NAME = "gancls.safetensors"
META_NAME = "gancls.json"
MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024  # far above any preset; bounds what a loader reads
STALE_TEMP_SECONDS = 600.0  # a temp file this old was left by a writer that died mid-save


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged or does not fit this version of gancls."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (on CPU, eval mode), its metadata and any training state."""

    model: GANCLS
    meta: dict[str, Any]
    train_state: dict[str, torch.Tensor]
    path: Path

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))


def resolve_path(path: str | os.PathLike) -> Path:
    """A checkpoint file from a run directory or a file path."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / WEIGHTS_NAME
        if not p.is_file():
            raise CheckpointError(f"{path}: no checkpoint in this directory (expected {WEIGHTS_NAME})")
    elif not p.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    return p


def _atomic_write(path: Path, data: bytes) -> None:
    # Write a temp file in the same directory, fsync it, rename over the target, fsync the dir:
    # a reader sees the old file or the new one, never half of one, even after a crash.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    _remove_stale_temps(path)


def _remove_stale_temps(path: Path) -> None:
    # A process killed mid-save leaves its temp file behind and nothing else will ever rename it;
    # only old ones go, so a concurrent writer's fresh temp file is never touched.
    cutoff = time.time() - STALE_TEMP_SECONDS
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:  # already gone, or not ours to remove
            pass


def save_checkpoint(path: str | os.PathLike, model: GANCLS, meta: dict[str, Any],
                    train_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Save model weights (+ optional training state) and metadata; returns the weights path."""
    p = Path(path)
    if p.suffix != ".safetensors":
        p = p / WEIGHTS_NAME
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_config": model.cfg.to_dict(), **meta}
    tensors = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    for k, v in (train_state or {}).items():
        tensors[f"train.{k}"] = v.detach().to("cpu").contiguous()
    text = json.dumps(meta, indent=1, sort_keys=True)
    _atomic_write(p, st_save(tensors, metadata={"gancls": text}))
    _atomic_write(p.with_suffix(".json"), (text + "\n").encode())  # META_NAME beside WEIGHTS_NAME
    return p


def _read_header(p: Path, data: bytes) -> dict[str, Any]:
    # The safetensors layout: u64 little-endian header length, JSON header, raw tensor bytes.
    if len(data) == 0:
        raise CheckpointError(f"{p}: the file is empty")
    if len(data) < 8:
        raise CheckpointError(f"{p}: not a gancls checkpoint (file too short)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(f"{p}: not a safetensors file, or truncated (header of {n} bytes in a {len(data)}-byte file)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{p}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{p}: not a safetensors file (unexpected header)")
    offsets = [v.get("data_offsets") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    # Malformed offsets are left to safetensors' own parser, which refuses them below.
    end = max((o[1] for o in offsets if isinstance(o, list) and len(o) == 2 and all(type(i) is int for i in o)),
              default=0)
    if 8 + n + end > len(data):
        raise CheckpointError(f"{p}: the file is truncated ({len(data)} bytes, {8 + n + end} expected)")
    return header


def load_checkpoint(path: str | os.PathLike, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Checkpoint:
    """Load and validate a checkpoint (file or run directory). Never unpickles anything."""
    p = resolve_path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: not a regular file")
    size = p.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{p}: {size / 2**20:.1f} MB is larger than the {max_bytes / 2**20:.0f} MB limit for a checkpoint")
    data = p.read_bytes()
    header = _read_header(p, data)
    try:
        meta = json.loads(header.get("__metadata__", {}).get("gancls", "null"))
    except (AttributeError, TypeError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{p}: a safetensors file, but not a gancls checkpoint (no gancls metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p}: checkpoint format version {meta.get('format_version')!r}; "
                              f"this gancls reads version {FORMAT_VERSION}")
    step = meta.get("step", 0)
    if type(step) is not int or step < 0:
        raise CheckpointError(f"{p}: damaged metadata (step {step!r} is not a whole number >= 0)")
    try:
        cfg = validate_model(ModelConfig.from_dict(meta["model_config"]))
        with torch.device("meta"):  # shapes only: a forged config cannot make us allocate a huge model
            expected = GANCLS(cfg).state_dict()
    except (KeyError, TypeError, ValueError, ArithmeticError, RuntimeError) as e:  # ConfigError is a ValueError
        raise CheckpointError(f"{p}: unusable model configuration ({e})") from None
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{p}: damaged tensor data ({e})") from None
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    _check_tensors(p, expected, weights)
    model = GANCLS(cfg)  # now no larger than the file
    model.load_state_dict(weights)
    model.eval()
    train_state = {k[len("train."):]: v for k, v in tensors.items() if k.startswith("train.")}
    return Checkpoint(model=model, meta=meta, train_state=train_state, path=p)


def _check_tensors(p: Path, expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(got))
    if missing:
        raise CheckpointError(f"{p}: missing tensors for this architecture: {', '.join(missing[:5])}"
                              + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    extra = sorted(set(got) - set(expected))
    if extra:
        raise CheckpointError(f"{p}: unexpected tensors (another architecture?): {', '.join(extra[:5])}")
    for k, ref in expected.items():
        t = got[k]
        if t.shape != ref.shape:
            raise CheckpointError(f"{p}: tensor {k} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
        if t.dtype != ref.dtype:
            raise CheckpointError(f"{p}: tensor {k} has dtype {t.dtype}, expected {ref.dtype}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{p}: tensor {k} holds NaN or Inf values")
