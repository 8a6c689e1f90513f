"""Checkpoints: one safetensors file (weights, optimiser and RNG state, JSON metadata in its header)
plus a human-readable JSON copy of the metadata beside it. Saved atomically, loaded without pickle.

A run directory holds `gancls.safetensors` and `gancls.json`. The metadata inside the safetensors
header is the authoritative copy, so a checkpoint file is self-describing on its own.

Tensors are named `model.*` (G and D), `train.*` (optimiser and RNG state, for resuming) and,
optionally, `S.*`: a style encoder trained for this G (gancls.encoder), described by the metadata
entry `style_encoder` (its config and a fingerprint of the G it inverts). A checkpoint without S
loads with `encoder=None`; an S whose fingerprint does not match the file's G is not loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import ModelConfig
from .encoder import EncoderConfig, StyleEncoder
from .errors import UserError
from .memory import release_memory
from .models import GANCLS
from .sampling import write_atomic

FORMAT = "gancls-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_NAME = "gancls.safetensors"
META_NAME = "gancls.json"
MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024  # far above any preset; bounds what a loader reads
# A real header is a few kB of tensor entries plus the metadata, whose largest part is the metric
# history (at most 5,000 entries, under 2 MB as JSON). Past these caps a header is refused from its
# first 8 bytes, before any of it is read or parsed: parsing is what costs memory, not the file size.
MAX_HEADER_BYTES = 8 * 2**20
MAX_METADATA_CHARS = 4 * 2**20  # each string in __metadata__
MAX_TENSORS = 1024  # a checkpoint holds about 150 (G, D, optimiser state, style encoder)
STALE_TEMP_SECONDS = 600.0  # a temp file this old was left by a writer that died mid-save


class CheckpointError(UserError):
    """A checkpoint is missing, damaged or does not fit this version of gancls."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (on CPU, eval mode), its metadata and any training state."""

    model: GANCLS
    meta: dict[str, Any]
    train_state: dict[str, torch.Tensor]
    path: Path
    encoder: StyleEncoder | None = None  # the style encoder S, when one was saved for this G
    encoder_stale: bool = False  # an S was saved, but for another G (so `encoder` is None)

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

    def write(f: BinaryIO) -> None:
        os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary file
        f.write(data)

    write_atomic(path, write)
    dir_fd = os.open(path.parent, os.O_RDONLY)  # and the rename itself survives a crash
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
                    train_state: dict[str, torch.Tensor] | None = None,
                    encoder: StyleEncoder | None = None) -> Path:
    """Save model weights (+ optional training state and style encoder) and metadata; returns the weights path."""
    p = Path(path)
    if p.suffix != ".safetensors":
        p = p / WEIGHTS_NAME
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_config": model.cfg.to_dict(), **meta}
    meta.pop("style_encoder", None)  # copied from an older checkpoint, it would describe an S not saved here
    tensors = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    for k, v in (train_state or {}).items():
        tensors[f"train.{k}"] = v.detach().to("cpu").contiguous()
    if encoder is not None:
        tensors.update(_encoder_tensors(encoder))
        meta["style_encoder"] = _encoder_meta(encoder, tensors)
    _write(p, tensors, meta)
    return p


def add_encoder(path: str | os.PathLike, encoder: StyleEncoder) -> Path:
    """Write style encoder S into an existing checkpoint (replacing any S); all else stays bit for bit."""
    ckpt = load_checkpoint(path)  # the file must be a valid checkpoint before we rewrite it
    if encoder.cfg.noise_dim != ckpt.model.cfg.noise_dim:
        raise CheckpointError(f"{ckpt.path}: this style encoder predicts {encoder.cfg.noise_dim} noise dimensions, "
                              f"the checkpoint's G takes {ckpt.model.cfg.noise_dim}")
    tensors = {k: v for k, v in st_load(ckpt.path.read_bytes()).items() if not k.startswith("S.")}
    tensors.update(_encoder_tensors(encoder))
    meta = {**ckpt.meta, "style_encoder": _encoder_meta(encoder, tensors)}
    _write(ckpt.path, tensors, meta)
    return ckpt.path


def _write(p: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    text = json.dumps(meta, indent=1, sort_keys=True)
    _atomic_write(p, st_save(tensors, metadata={"gancls": text}))
    _atomic_write(p.with_suffix(".json"), (text + "\n").encode())  # META_NAME beside WEIGHTS_NAME


def _encoder_tensors(encoder: StyleEncoder) -> dict[str, torch.Tensor]:
    return {f"S.{k}": v.detach().to("cpu").contiguous() for k, v in encoder.state_dict().items()}


def _encoder_meta(encoder: StyleEncoder, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {"config": encoder.cfg.to_dict(), "g_sha256": _g_fingerprint(tensors), "info": dict(encoder.info)}


def _g_fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of G's tensors (`model.G.*`, by name): which G a style encoder was trained to invert."""
    h = hashlib.sha256()
    for k in sorted(t for t in tensors if t.startswith("model.G.")):
        h.update(k.encode() + b"\0" + tensors[k].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _header_length(p: Path, prefix: bytes, size: int) -> int:
    """The JSON header's length from the first 8 bytes (u64 little-endian), checked against the caps."""
    # The safetensors layout: u64 little-endian header length, JSON header, raw tensor bytes.
    if size == 0:
        raise CheckpointError(f"{p}: the file is empty")
    if size < 8:
        raise CheckpointError(f"{p}: not a gancls checkpoint (file too short)")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > size - 8:
        raise CheckpointError(f"{p}: not a safetensors file, or truncated (header of {n} bytes in a {size}-byte file)")
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(f"{p}: its header is {n / 2**20:.1f} MB, more than the {MAX_HEADER_BYTES / 2**20:.0f} MB "
                              "a gancls checkpoint's header can be")
    return n


def _read_header(p: Path, data: bytes, n: int) -> dict[str, Any]:
    """The JSON header of `data`, whose first 8 bytes announce its length `n` (checked by _header_length)."""
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{p}: not a safetensors file (unreadable header)") from None
    except RecursionError:  # JSON nested thousands deep: Python's parser gives up, so do we
        raise CheckpointError(f"{p}: not a gancls checkpoint (its header is nested too deeply)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{p}: not a safetensors file (unexpected header)")
    if len(header) > MAX_TENSORS + 1:  # + __metadata__
        raise CheckpointError(f"{p}: {len(header) - 1:,} tensors, more than the {MAX_TENSORS:,} a gancls checkpoint holds")
    metadata = header.get("__metadata__")
    for key, value in (metadata.items() if isinstance(metadata, dict) else ()):
        if isinstance(value, str) and len(value) > MAX_METADATA_CHARS:
            raise CheckpointError(f"{p}: metadata entry {str(key)[:40]!r} is {len(value) / 2**20:.1f} MB, more than "
                                  f"the {MAX_METADATA_CHARS / 2**20:.0f} MB a gancls checkpoint's metadata can be")
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
    with p.open("rb") as f:
        n = _header_length(p, f.read(8), size)  # refuse an oversized header before reading the file
    try:
        return _load(p, p.read_bytes(), n)
    except CheckpointError as err:
        # The traceback's frames hold the file's bytes and the parsed header: dropping them frees both
        # (no cycles, so no collection needed), and the heap goes back to the OS before the message goes up.
        refused = err.with_traceback(None)
        refused.__context__ = None
    release_memory(collect=False)
    raise refused


def _load(p: Path, data: bytes, n: int) -> Checkpoint:
    header = _read_header(p, data, n)
    try:
        meta = json.loads(header.get("__metadata__", {}).get("gancls", "null"))
    except (AttributeError, TypeError, ValueError, RecursionError):
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
        cfg = ModelConfig.from_dict(meta["model_config"])  # checks itself
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
    encoder, stale = _load_encoder(p, meta, cfg, tensors)
    return Checkpoint(model=model, meta=meta, train_state=train_state, path=p, encoder=encoder, encoder_stale=stale)


def _load_encoder(p: Path, meta: dict[str, Any], cfg: ModelConfig,
                  tensors: dict[str, torch.Tensor]) -> tuple[StyleEncoder | None, bool]:
    """The checkpoint's style encoder (checked like G and D), or None; and whether a saved one was stale."""
    got = {k: v for k, v in tensors.items() if k.startswith("S.")}
    info = meta.get("style_encoder")
    if info is None:
        if got:
            raise CheckpointError(f"{p}: style encoder tensors ({next(iter(got))}, ...) but no style_encoder metadata")
        return None, False
    try:
        ecfg = EncoderConfig.from_dict(info["config"])  # checks itself
        if ecfg.noise_dim != cfg.noise_dim:
            raise ValueError(f"it predicts {ecfg.noise_dim} noise dimensions, G takes {cfg.noise_dim}")
        with torch.device("meta"):  # shapes only, as for G and D
            expected = {f"S.{k}": v for k, v in StyleEncoder(ecfg).state_dict().items()}
    except (KeyError, TypeError, ValueError, ArithmeticError, RuntimeError) as e:
        raise CheckpointError(f"{p}: unusable style encoder configuration ({e})") from None
    _check_tensors(p, expected, got)
    if info.get("g_sha256") != _g_fingerprint(tensors):
        return None, True  # trained for another G: its styles would be wrong, so it is not used
    encoder = StyleEncoder(ecfg)
    encoder.load_state_dict({k[len("S."):]: v for k, v in got.items()})
    encoder.info = dict(info.get("info") or {})
    return encoder.eval(), False


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
