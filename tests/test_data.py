"""Tests for gancls.data: explicit dirs, the download path (offline, stalled, local mirror), and the embedded subset.

Folder tests read the `mnist` fixture's folder: full MNIST where there is one, else the embedded subset
written as IDX files, so they run in a bare clone too.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from gancls.data import EMBEDDED_PATH, IDX_FILES, DataError, load_embedded, load_mnist, read_idx


@pytest.fixture(autouse=True)
def _no_user_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own settings must not leak into what a test resolves.
    monkeypatch.delenv("GANCLS_DATA", raising=False)
    monkeypatch.setenv("GANCLS_CACHE", str(tmp_path / "env-cache"))


def _check_same(data, mnist, source: str) -> None:
    """`data` holds exactly the fixture's digits, read from a folder (source `source`)."""
    want = mnist.data
    assert data.source == source
    assert data.train_images.dtype == torch.uint8 and data.test_images.dtype == torch.uint8
    assert data.train_labels.dtype == torch.int64 and data.test_labels.dtype == torch.int64
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(data, name), getattr(want, name)), name
    assert f"{len(want.train_labels):,} train / {len(want.test_labels):,} test" in data.description
    if mnist.full:  # the real files: MNIST's well-known first labels
        assert data.train_images.shape == (60000, 28, 28) and data.test_images.shape == (10000, 28, 28)
        assert data.train_labels[:5].tolist() == [5, 0, 4, 1, 9]
        assert data.test_labels[:5].tolist() == [7, 2, 1, 0, 4]


# ---- explicit directory -------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["", "MNIST", "MNIST/raw"], ids=["root", "MNIST", "raw"])
def test_explicit_dir_accepts_root_mnist_and_raw(mnist, form: str) -> None:
    lines: list[str] = []
    data = load_mnist(mnist.root / form, log=lines.append)
    _check_same(data, mnist, "dir")
    assert Path(data.location) == mnist.raw
    assert any(str(mnist.raw) in line for line in lines)


def test_env_var_is_honoured_and_argument_wins(mnist, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GANCLS_DATA", str(mnist.root))
    lines: list[str] = []
    _check_same(load_mnist(allow_download=False, log=lines.append), mnist, "dir")
    assert any("GANCLS_DATA" in line for line in lines)
    # An explicit argument overrides the environment: here a bad one, so it must raise.
    with pytest.raises(DataError):
        load_mnist(tmp_path, allow_download=False)


def test_bad_explicit_dirs_raise_with_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="does not exist") as info:
        load_mnist(missing)
    assert str(missing) in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte") as info:
        load_mnist(empty)
    assert str(empty) in str(info.value)

    # A bad GANCLS_DATA is as explicit as an argument: no silent fall-through to other sources.
    monkeypatch.setenv("GANCLS_DATA", str(missing))
    with pytest.raises(DataError, match="nowhere"):
        load_mnist()
    assert issubclass(DataError, ValueError)


def test_missing_file_is_named(mnist, tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES[:3]:
        (raw / name).symlink_to(mnist.raw / name)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path)
    assert str(raw) in str(info.value)


def _raw_copy(mnist, tmp_path: Path) -> Path:
    """A raw/ folder whose big image files link to the fixture's and whose label files are real copies."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in IDX_FILES:
        if "labels" in name:
            shutil.copy(mnist.raw / name, raw / name)
        else:
            (raw / name).symlink_to(mnist.raw / name)
    return raw


def test_truncated_idx_file_is_named(mnist, tmp_path: Path) -> None:
    raw = _raw_copy(mnist, tmp_path)
    victim = raw / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:500])  # the subset's test labels are 1,008 bytes
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(raw)
    assert str(victim) in str(info.value) and "truncated" in str(info.value)

    victim.write_bytes(b"\x00\x00")  # cut inside the magic number
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_mnist(raw)


def test_gz_variants_are_read_and_bad_gz_is_named(mnist, tmp_path: Path) -> None:
    raw = _raw_copy(mnist, tmp_path)
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes(), compresslevel=1))
        (raw / name).unlink()
    _check_same(load_mnist(raw), mnist, "dir")

    broken = raw / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DataError) as info:
        load_mnist(raw)
    assert str(broken) in str(info.value)


def test_wrong_magic_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "x-idx1-ubyte"
    bogus.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"\x00" * 12)  # float32 type code
    with pytest.raises(DataError, match="magic"):
        read_idx(bogus)


# ---- embedded subset ----------------------------------------------------------------------------


def test_embedded_subset_is_balanced_and_small() -> None:
    data = load_embedded()
    assert data.source == "embedded" and Path(data.location) == EMBEDDED_PATH
    assert EMBEDDED_PATH.stat().st_size <= 4 * 1024 * 1024
    assert data.train_images.shape == (10000, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (1000, 28, 28) and data.test_images.dtype == torch.uint8
    assert data.train_labels.dtype == torch.int64 and data.test_labels.dtype == torch.int64
    assert torch.bincount(data.train_labels, minlength=10).tolist() == [1000] * 10
    assert torch.bincount(data.test_labels, minlength=10).tolist() == [100] * 10
    assert data.train_images.float().mean() > 20  # real digits, not blank pages
    assert data.description == "embedded subset (10,000 train / 1,000 test)"


def test_embedded_subset_is_unmodified_mnist(mnist) -> None:
    mnist.require_full()  # what the subset was cut from
    full = mnist.data
    with np.load(EMBEDDED_PATH) as npz:
        train_idx = torch.from_numpy(npz["train_indices"]).long()
        test_idx = torch.from_numpy(npz["test_indices"]).long()
    sub = load_embedded()
    assert torch.equal(sub.train_images, full.train_images[train_idx])
    assert torch.equal(sub.train_labels, full.train_labels[train_idx])
    assert torch.equal(sub.test_images, full.test_images[test_idx])
    assert torch.equal(sub.test_labels, full.test_labels[test_idx])


# ---- download path ------------------------------------------------------------------------------


# A hang guard, not a speed limit: an unbounded network wait (the bug these tests catch) never returns at all.
HANG_GUARD_S = 120


def _load_bounded(**kwargs) -> tuple:
    """load_mnist(**kwargs) with its log lines, failing the test if it has not returned after HANG_GUARD_S."""
    lines: list[str] = []
    result: dict = {}

    def call() -> None:
        try:
            result["data"] = load_mnist(log=lines.append, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            result["error"] = e

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), f"load_mnist hung (no answer after {HANG_GUARD_S} s): {lines}"
    if "error" in result:
        raise result["error"]
    return result["data"], lines


def _assert_fell_through(data, lines: list[str], cache: Path) -> None:
    assert data.source == "embedded"
    assert any(line.startswith("download failed") for line in lines), lines
    assert lines[-1] == "using embedded subset"
    # Nothing half-downloaded may remain to be mistaken for a cache next time.
    assert not (cache / "MNIST").exists()
    if cache.exists():
        assert not list(cache.glob(".MNIST-partial-*"))


def test_offline_closed_port_falls_through_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/", "https://127.0.0.1:9/"])
    cache = tmp_path / "cache"
    data, lines = _load_bounded(cache_dir=cache)
    _assert_fell_through(data, lines, cache)


def test_offline_no_sockets_falls_through_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (simulated)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    cache = tmp_path / "cache"
    data, lines = _load_bounded(cache_dir=cache)
    _assert_fell_through(data, lines, cache)
    assert "simulated" in " ".join(lines)


def test_hanging_dns_is_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Name lookups ignore socket timeouts; a resolver that never answers must still not block us.
    asked, release = threading.Event(), threading.Event()

    def stalled_lookup(*args, **kwargs):
        asked.set()
        release.wait(HANG_GUARD_S)  # stalls until the test is over
        raise socket.gaierror("simulated resolver stall")

    monkeypatch.setattr(socket, "getaddrinfo", stalled_lookup)
    monkeypatch.setattr(MNIST, "mirrors", ["https://mirror.invalid/mnist/"])
    cache = tmp_path / "cache"
    try:
        data, lines = _load_bounded(cache_dir=cache, download_timeout=1.0)
        # It gave up on the resolver while the lookup was still stalled, after its own timeout.
        assert asked.is_set() and not release.is_set()
        assert any("within 1 s" in line for line in lines), lines
    finally:
        release.set()
    _assert_fell_through(data, lines, cache)


def test_stalled_mirror_times_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A server that accepts connections but never answers: the probe passes, so the socket timeout must end it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        monkeypatch.setattr(MNIST, "mirrors", [f"http://127.0.0.1:{server.getsockname()[1]}/"])
        cache = tmp_path / "cache"
        data, lines = _load_bounded(cache_dir=cache, download_timeout=1.0)
        _assert_fell_through(data, lines, cache)
        assert socket.getdefaulttimeout() is None  # restored after the download attempt
    finally:
        server.close()


def _fake_mirror(folder: Path, n_train: int = 20, n_test: int = 10) -> list[tuple[str, str]]:
    """Write a tiny gzipped MNIST-format dataset into `folder`; return torchvision-style (name, md5) pairs."""
    rng = np.random.default_rng(0)

    def idx(array: np.ndarray) -> bytes:
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        return header + array.astype(np.uint8).tobytes()

    contents = {
        "train-images-idx3-ubyte": idx(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": idx(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": idx(rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte": idx(np.arange(n_test) % 10),
    }
    resources = []
    for name, blob in contents.items():
        packed = gzip.compress(blob)
        (folder / f"{name}.gz").write_bytes(packed)
        resources.append((f"{name}.gz", hashlib.md5(packed).hexdigest()))
    return resources


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def local_mirror(tmp_path: Path):
    """A local HTTP server over a folder; yields (folder, base URL)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = lambda *a, **k: _Quiet(*a, directory=str(folder), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_download_then_cache_reuse_without_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local_mirror
) -> None:
    folder, url = local_mirror
    monkeypatch.setattr(MNIST, "resources", _fake_mirror(folder))
    monkeypatch.setattr(MNIST, "mirrors", [url])
    cache, lines = tmp_path / "cache", []

    data = load_mnist(cache_dir=cache, log=lines.append)
    assert data.source == "download", lines
    assert data.train_images.shape == (20, 28, 28) and data.test_labels.tolist() == list(range(10))
    assert Path(data.location) == cache / "MNIST" / "raw"
    assert not list(cache.glob(".MNIST-partial-*"))

    # Second call: the cache holds the files, so no socket may be opened at all. Reused caches report "download".
    def refuse(*args, **kwargs):
        raise AssertionError("network used although the cache was complete")

    monkeypatch.setattr(socket, "create_connection", refuse)
    lines.clear()
    again = load_mnist(cache_dir=cache, log=lines.append)
    assert again.source == "download" and torch.equal(again.train_images, data.train_images)
    assert any("cached download" in line for line in lines)


def test_corrupt_download_leaves_no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local_mirror) -> None:
    folder, url = local_mirror
    resources = _fake_mirror(folder)
    victim = folder / "t10k-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:50])  # the mirror serves a cut file, so its md5 fails
    monkeypatch.setattr(MNIST, "resources", resources)
    monkeypatch.setattr(MNIST, "mirrors", [url])
    cache = tmp_path / "cache"
    data, lines = _load_bounded(cache_dir=cache)
    _assert_fell_through(data, lines, cache)
    assert list(cache.iterdir()) == []


def test_prefilled_cache_dir_is_used_without_network(mnist, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "MNIST").mkdir(parents=True)
    (cache / "MNIST" / "raw").symlink_to(mnist.raw)

    def refuse(*args, **kwargs):
        raise AssertionError("network used although the cache was complete")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("GANCLS_CACHE", str(cache))  # found through the env var this time
    _check_same(load_mnist(), mnist, "download")


def test_download_disabled_goes_straight_to_embedded(tmp_path: Path) -> None:
    lines: list[str] = []
    data = load_mnist(allow_download=False, cache_dir=tmp_path, log=lines.append)
    assert data.source == "embedded"
    assert lines == ["no data dir given", "download disabled", "using embedded subset"]
    assert list(tmp_path.iterdir()) == []
