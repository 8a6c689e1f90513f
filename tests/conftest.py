"""Shared fixtures: MNIST (full or the embedded subset), a tiny pretrained checkpoint, and the app in a subprocess."""

from __future__ import annotations

import os

# The suite runs the app server, training subprocesses and the tests side by side on a small CPU:
# one torch thread each avoids oversubscription (2 threads per process thrash 2 shared cores).
# Set before anything imports torch; subprocesses inherit it. Only pytest loads this file (benchmarks and
# scripts take their helpers from demo.harness), so it never sets a benchmark's threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from demo.harness.browser import chromium
from demo.harness.clock import StepClock
from demo.harness.launch import serving

if TYPE_CHECKING:
    from gancls.data import MnistData

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FULL_SIZES = (60_000, 10_000)  # train, test


@dataclass(frozen=True)
class Mnist:
    """The MNIST the tests use: its tensors and a torchvision-layout folder holding the same digits."""

    data: MnistData
    root: Path  # root / "MNIST" / "raw" holds the four IDX files
    origin: str  # "GANCLS_DATA", "../shared/data" or "embedded subset"

    @property
    def raw(self) -> Path:
        """The folder holding the IDX files."""
        return self.root / "MNIST" / "raw"

    @property
    def full(self) -> bool:
        """True for the whole of MNIST (60,000 / 10,000), False for the embedded subset."""
        return (len(self.data.train_labels), len(self.data.test_labels)) == FULL_SIZES

    def require_full(self) -> None:
        """Skip the calling test, with the reason, when only the subset is here."""
        if not self.full:
            pytest.skip(f"needs the full MNIST (60,000 / 10,000); only the {self.origin} is here: "
                        f"put it in {SHARED_DATA} or point GANCLS_DATA at it")


def write_idx(path: Path, array) -> None:
    """Write a uint8 array as an IDX file (magic 0x0803 or 0x0801, big-endian dims, then the bytes)."""
    import numpy as np

    a = np.ascontiguousarray(array, dtype=np.uint8)
    path.write_bytes(bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes())


@pytest.fixture(scope="session")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Mnist:
    """MNIST for every test that reads it: $GANCLS_DATA, else ../shared/data, else the embedded subset.

    The subset (10,000 / 1,000 digits, shipped in the repo) is also written as IDX files, so tests
    that hand a folder to the CLI, the app or a script work in a bare clone.
    """
    from gancls.data import IDX_FILES, find_raw_dir, load_embedded, load_mnist

    env = os.environ.get("GANCLS_DATA")
    if env or SHARED_DATA.is_dir():
        # A set GANCLS_DATA is explicit: a bad one fails here with load_mnist's message, not silently.
        origin, given = ("GANCLS_DATA", Path(env)) if env else ("../shared/data", SHARED_DATA)
        raw = find_raw_dir(given)
        data = load_mnist(raw, allow_download=False)
        if raw.name == "raw" and raw.parent.name == "MNIST":
            return Mnist(data, raw.parent.parent, origin)
        root = tmp_path_factory.mktemp("mnist-link")  # torchvision wants <root>/MNIST/raw
        (root / "MNIST").mkdir()
        (root / "MNIST" / "raw").symlink_to(raw.resolve())
        return Mnist(data, root, origin)
    data = load_embedded()
    root = tmp_path_factory.mktemp("mnist-subset")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = (data.train_images, data.train_labels, data.test_images, data.test_labels)
    for name, tensor in zip(IDX_FILES, arrays):
        write_idx(raw / name, tensor.numpy())
    return Mnist(data, root, "embedded subset")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'small' model trained for a few steps on the embedded subset: the app's stand-in pretrained model."""
    import torch

    from gancls.config import Budget, model_preset, train_preset
    from gancls.data import load_embedded
    from gancls.train import Trainer

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("pretrained")
    trainer = Trainer(model_preset("small"), train_preset("small"), load_embedded(), device="cpu", run_dir=out)
    for _ in trainer.run(Budget(steps=5)):
        pass
    return out


@pytest.fixture(scope="session")
def app_server(tiny_checkpoint: Path, data_dir: Path | None,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The app on a free port: yields {'url', 'startup_s', 'log'}; killed at the end of the session."""
    with serving(tiny_checkpoint, tmp_path_factory.mktemp("app"), data_dir) as app:
        yield app


@pytest.fixture(scope="session")
def data_dir(mnist: Mnist) -> Path | None:
    """The MNIST folder the app and CLI get in tests, or None when only the subset is here (they load it themselves)."""
    return None if mnist.origin == "embedded subset" else mnist.root


@pytest.fixture(scope="session")
def app_url(app_server: dict) -> str:
    """The URL of the running app."""
    return app_server["url"]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One browser for a test module; each test opens its own context or page on it."""
    with chromium() as b:
        yield b


@pytest.fixture
def step_clock(monkeypatch: pytest.MonkeyPatch) -> StepClock:
    """The training engine's clock, replaced for one test by a StepClock (0.125 s a step: a power of two,
    so sums of steps compare exactly); set `.dt` to change it."""
    import gancls.train as train_module
    from gancls.train import Trainer

    clock = StepClock(dt=0.125)
    monkeypatch.setattr(train_module, "time", clock)
    step = Trainer.step

    def timed_step(self: Trainer):
        out = step(self)
        clock.now += clock.dt
        return out

    monkeypatch.setattr(Trainer, "step", timed_step)
    return clock


# Fixtures that mean a running app (a server process) or a real browser: every test that uses one is an
# end-to-end test and is marked slow, so `pytest -m "not slow"` is the quick set of everything else.
SERVED = frozenset({"app_server", "app_url", "browser", "app", "replay_url", "shipped_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow every test that needs a running app or a browser (see SERVED)."""
    for item in items:
        if SERVED & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _one_torch_thread_after_each_test() -> Iterator[None]:
    """Put torch back to one thread after every test (OMP_NUM_THREADS above), whatever the test or a fixture
    set: a leaked 2 made every later in-process run thrash the two shared cores (a 7 s recording took 60 s)."""
    yield
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
