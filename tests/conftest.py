"""Shared fixtures: a tiny pretrained checkpoint and the app running in a subprocess on a free port."""

from __future__ import annotations

import os

# The suite runs the app server, training subprocesses and the tests side by side on a small CPU:
# one torch thread each avoids oversubscription (2 threads per process thrash 2 shared cores).
# Set before anything imports torch; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until `url` answers 200; fails the test if the process dies or time runs out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'small' model trained for a few steps on the embedded subset: the app's stand-in pretrained model."""
    import torch

    from gancls.config import model_preset, train_preset
    from gancls.data import load_embedded
    from gancls.train import Trainer

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("pretrained")
    trainer = Trainer(model_preset("small"), train_preset("small", max_steps=5, epochs=None), load_embedded(),
                      device="cpu", run_dir=out)
    for _ in trainer.run():
        pass
    return out


def start_app(checkpoint: Path, port: int, log: Path, *extra: str) -> subprocess.Popen:
    """`python app.py` on `port` with the given pretrained checkpoint; output goes to `log`."""
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--checkpoint", str(checkpoint), *extra]
    if SHARED_DATA.is_dir():
        args += ["--data-dir", str(SHARED_DATA)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("GRADIO_SERVER_PORT", None)
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def stop_app(proc: subprocess.Popen) -> None:
    """Ctrl-C (so the app cleans its temp files), then kill if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def app_server(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The app on a free port: yields {'url', 'startup_s', 'log'}; killed at the end of the session."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    proc = start_app(tiny_checkpoint, port, log)
    url = f"http://127.0.0.1:{port}/"
    try:
        startup = wait_http(url, proc, timeout=90)
    except (RuntimeError, TimeoutError) as e:
        stop_app(proc)
        pytest.fail(f"{e}\n--- app log ---\n{log.read_text()[-3000:]}")
    yield {"url": url, "startup_s": startup, "log": log}
    stop_app(proc)


@pytest.fixture(scope="session")
def data_dir() -> Path | None:
    """The full MNIST the app serves in tests, or None (then it uses the embedded subset)."""
    return SHARED_DATA if SHARED_DATA.is_dir() else None


@pytest.fixture(scope="session")
def app_url(app_server: dict) -> str:
    """The URL of the running app."""
    return app_server["url"]
