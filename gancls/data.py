"""MNIST sources behind one function: a local directory, torchvision's download, or the embedded subset."""

from __future__ import annotations

import gzip
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import UserError

# (train images, train labels, test images, test labels), as torchvision names them in MNIST/raw/.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
EMBEDDED_PATH = Path(__file__).parent / "assets" / "mnist_subset.npz"
EMBEDDED_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


class DataError(UserError):
    """The MNIST data asked for is missing, truncated or malformed."""


@dataclass(frozen=True)
class MnistData:
    """MNIST images and labels plus where they came from."""

    train_images: torch.Tensor  # uint8 [N, 28, 28]
    train_labels: torch.Tensor  # int64 [N]
    test_images: torch.Tensor  # uint8 [M, 28, 28]
    test_labels: torch.Tensor  # int64 [M]
    source: str  # "dir" | "download" | "embedded" (a reused download cache also reports "download")
    location: str  # the path it was read from

    @property
    def description(self) -> str:
        """One human line: which data, how much, from where."""
        counts = f"{len(self.train_labels):,} train / {len(self.test_labels):,} test"
        if self.source == "embedded":
            return f"embedded subset ({counts})"
        return f"full MNIST ({counts}) from {self.location}"


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    allow_download: bool = True,
    cache_dir: str | os.PathLike | None = None,
    download_timeout: float = 10.0,
    log: Callable[[str], None] | None = None,
) -> MnistData:
    """Load MNIST from `data_dir`/$GANCLS_DATA, else a torchvision download, else the embedded subset."""
    say = log or (lambda line: None)

    # 1. An explicit directory: the user asked for it, so a bad one is an error, not a fall-through.
    if data_dir is None and os.environ.get("GANCLS_DATA"):
        data_dir = os.environ["GANCLS_DATA"]
        say(f"data dir from GANCLS_DATA: {data_dir}")
    if data_dir is not None:
        raw = find_raw_dir(data_dir)
        say(f"reading MNIST from {raw}")
        return _read_raw_dir(raw, source="dir")
    say("no data dir given")

    # 2. torchvision's download, into (or straight from) the cache.
    if allow_download:
        cache = _resolve_cache_dir(cache_dir)
        start = time.monotonic()
        try:
            data = _load_or_download(cache, download_timeout, say)
            say(f"using downloaded MNIST in {data.location} ({time.monotonic() - start:.1f} s)")
            return data
        except Exception as err:  # noqa: BLE001 - any failure here means "try the next source"
            say(f"download failed: {_one_line(err)} ({time.monotonic() - start:.1f} s)")
    else:
        say("download disabled")

    # 3. The subset shipped with the package always works offline.
    say("using embedded subset")
    return load_embedded()


def load_embedded() -> MnistData:
    """Load the 10,000/1,000-digit class-balanced subset shipped in gancls/assets."""
    path = EMBEDDED_PATH
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in EMBEDDED_KEYS}
    except KeyError as err:
        raise DataError(f"Embedded MNIST subset {path} lacks the array {err}.") from err
    except Exception as err:  # noqa: BLE001 - missing, truncated or not an npz: same message for the user
        raise DataError(f"Embedded MNIST subset {path} cannot be read ({_one_line(err)}).") from err
    return MnistData(
        train_images=torch.from_numpy(arrays["train_images"].astype(np.uint8)),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"].astype(np.uint8)),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        source="embedded",
        location=str(path),
    )


def find_raw_dir(data_dir: str | os.PathLike) -> Path:
    """Return the folder holding the IDX files, given the root, its MNIST folder, or the raw folder."""
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise DataError(f"MNIST data dir {path} does not exist.")
    if not path.is_dir():
        raise DataError(f"MNIST data dir {path} is not a directory.")
    candidates = (path / "MNIST" / "raw", path / "raw", path)
    for raw in candidates:
        if _idx_path(raw, IDX_FILES[0]) is not None:
            return raw
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(f"MNIST data dir {path} has no {IDX_FILES[0]} (or .gz); looked in {looked}.")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one uint8 IDX file (optionally gzipped) into an array, checking its header and size."""
    path = Path(path)
    try:
        blob = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataError(f"IDX file {path} cannot be read ({_one_line(err)}).") from err
    # Header: two zero bytes, a type code (0x08 = uint8), the number of dims, then each dim as big-endian int32.
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08 or not 1 <= blob[3] <= 3:
        raise DataError(f"IDX file {path} has a bad magic number (not a uint8 IDX file).")
    ndim = blob[3]
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"IDX file {path} is truncated inside its header.")
    shape = tuple(int(d) for d in np.frombuffer(blob, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(blob) - header != expected:
        raise DataError(
            f"IDX file {path} holds {len(blob) - header:,} data bytes but its header {shape} needs {expected:,} "
            "(truncated or corrupt)."
        )
    # Copy so the tensor built on it owns writable memory (frombuffer over bytes is read-only).
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape).copy()


def _read_raw_dir(raw: Path, source: str) -> MnistData:
    """Read the four IDX files in `raw` and check they fit together as MNIST."""
    arrays = []
    for name in IDX_FILES:
        path = _idx_path(raw, name)
        if path is None:
            raise DataError(f"MNIST data dir {raw} is missing {name} (or {name}.gz).")
        arrays.append((path, read_idx(path)))
    (tri_path, train_images), (trl_path, train_labels), (tei_path, test_images), (tel_path, test_labels) = arrays
    for path, images in ((tri_path, train_images), (tei_path, test_images)):
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"IDX file {path} holds images of shape {images.shape[1:]}, not 28x28.")
    for path, labels, images in ((trl_path, train_labels, train_images), (tel_path, test_labels, test_images)):
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"IDX file {path} holds {labels.shape} labels for {len(images):,} images.")
        if labels.size and labels.max() > 9:
            raise DataError(f"IDX file {path} holds a label {int(labels.max())}, outside 0-9.")
    return MnistData(
        train_images=torch.from_numpy(train_images),
        train_labels=torch.from_numpy(train_labels.astype(np.int64)),
        test_images=torch.from_numpy(test_images),
        test_labels=torch.from_numpy(test_labels.astype(np.int64)),
        source=source,
        location=str(raw),
    )


def _idx_path(raw: Path, name: str) -> Path | None:
    """The plain IDX file if present, else its .gz, else None."""
    for candidate in (raw / name, raw / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """The download cache: the argument, else $GANCLS_CACHE, else ~/.cache/gancls."""
    chosen = cache_dir if cache_dir is not None else os.environ.get("GANCLS_CACHE") or "~/.cache/gancls"
    return Path(chosen).expanduser()


def _load_or_download(cache: Path, timeout: float, say: Callable[[str], None]) -> MnistData:
    """Use a complete download in `cache`, else download one with torchvision and publish it atomically."""
    final = cache / "MNIST"
    if _idx_path(final / "raw", IDX_FILES[0]) is not None:
        try:
            data = _read_raw_dir(final / "raw", source="download")
            say(f"found cached download in {final / 'raw'}")
            return data
        except DataError as err:
            say(f"ignoring broken cache: {err}")

    _probe_mirrors(timeout)

    from torchvision.datasets import (
        MNIST,  # heavy import, needed only when really downloading
    )

    cache.mkdir(parents=True, exist_ok=True)
    # Download into a private staging folder and move it into place only once it reads back whole,
    # so an interrupted or failed download never looks like a usable cache next time.
    staging = Path(tempfile.mkdtemp(prefix=".MNIST-partial-", dir=cache))
    previous_timeout = socket.getdefaulttimeout()
    try:
        # torchvision's downloader opens URLs without a timeout; the default bounds every connect and read.
        socket.setdefaulttimeout(timeout)
        try:
            MNIST(str(staging), train=True, download=True)
        finally:
            socket.setdefaulttimeout(previous_timeout)
        _read_raw_dir(staging / "MNIST" / "raw", source="download")  # verify before publishing
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging / "MNIST", final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _read_raw_dir(final / "raw", source="download")


def _probe_mirrors(timeout: float) -> None:
    """Raise OSError unless some MNIST mirror (or its proxy) accepts a TCP connection within `timeout` s."""
    from torchvision.datasets import (
        MNIST,  # read at call time so tests can point the mirrors elsewhere
    )

    targets = [_connect_target(url) for url in MNIST.mirrors]
    results: queue.Queue[tuple[str, Exception | None]] = queue.Queue()

    def attempt(host: str, port: int) -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            results.put((f"{host}:{port}", None))
        except Exception as err:  # noqa: BLE001 - reported to the waiting caller
            results.put((f"{host}:{port}", err))

    # Daemon threads because DNS lookups ignore socket timeouts and could otherwise block for minutes.
    for host, port in targets:
        threading.Thread(target=attempt, args=(host, port), daemon=True).start()
    deadline = time.monotonic() + timeout
    errors = []
    for _ in targets:
        try:
            where, err = results.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if err is None:
            return
        errors.append(f"{where}: {_one_line(err)}")
    detail = "; ".join(errors) or "no answer"
    raise OSError(f"no MNIST mirror reachable within {timeout:g} s ({detail})")


def _connect_target(url: str) -> tuple[str, int]:
    """The host and port a urllib request for `url` would connect to first, honouring proxy settings."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _one_line(err: BaseException) -> str:
    """An exception as one short line for logs and messages."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."
