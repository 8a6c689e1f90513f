"""Forged checkpoints for the safe-loading tests and the crafted-checkpoint benchmark.

A gancls checkpoint is a safetensors file: a u64 little-endian header length, a JSON header (tensor
entries and `__metadata__`, whose `gancls` string is the JSON metadata), then the raw tensor bytes.
These helpers rewrite the header of a good file, leaving its tensor bytes as they are.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any


def split_checkpoint(path: Path) -> tuple[dict, bytes]:
    """(the JSON header, the tensor bytes) of a safetensors file."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def join_checkpoint(header: Any, body: bytes) -> bytes:
    """A safetensors file's bytes from a header (any JSON value, to forge bad ones) and tensor bytes."""
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def with_meta(good: Path, **changes: Any) -> bytes:
    """`good`'s bytes with its gancls metadata changed: `step=…` sets a top-level entry,
    `**{"model_config.g_fc": …}` one inside a section (model_config, train_config)."""
    header, body = split_checkpoint(good)
    meta = json.loads(header["__metadata__"]["gancls"])
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        (meta[section] if section else meta)[name] = value
    header["__metadata__"]["gancls"] = json.dumps(meta)
    return join_checkpoint(header, body)


def oversized_header(path: Path, n: int) -> None:
    """A file whose first 8 bytes announce an `n`-byte header, followed by that many (sparse) bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", n) + b"{")
        f.truncate(8 + n + 16)  # sparse: the size without the disk space


def empty_tensors(n: int) -> dict:
    """`n` header entries of empty tensors (`model.pad0` …), to add to a header."""
    return {f"model.pad{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)}
