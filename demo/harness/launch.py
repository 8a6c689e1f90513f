"""The app in a subprocess: `python app.py` from the checkout, on a free port, stopped cleanly afterwards.

Two shapes, for two kinds of caller:
  * `start_app` / `stop_app` / `serving`: the app as the tests' shared server (`serving` is a with-block);
  * `launch` -> `AppProcess`: the app with its own runs folder and TMPDIR, for tests and benchmarks that
    look at what it keeps on disk, its memory, or how it stops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import ROOT
from .ports import free_port, wait_http


# ---------------------------------------------------------------------------- the tests' shared server
def start_app(checkpoint: Path, port: int, log: Path, *extra: str, data_dir: Path | None = None) -> subprocess.Popen:
    """`python app.py` on `port` with the given pretrained checkpoint and MNIST folder; output goes to `log`."""
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--checkpoint", str(checkpoint), *extra]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
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


@contextlib.contextmanager
def serving(checkpoint: Path, work: Path, data_dir: Path | None = None) -> Iterator[dict]:
    """The app on `checkpoint` at a free port for the with-block: {'url', 'startup_s', 'log'}.

    RuntimeError, with the end of the app's log, if it does not start.
    """
    port, log = free_port(), work / "app.log"
    proc = start_app(checkpoint, port, log, data_dir=data_dir)
    url = f"http://127.0.0.1:{port}/"
    try:
        startup = wait_http(url, proc, timeout=90)
    except (RuntimeError, TimeoutError) as e:
        stop_app(proc)
        raise RuntimeError(f"{e}\n--- app log ---\n{log.read_text()[-3000:]}") from None
    try:
        yield {"url": url, "startup_s": startup, "log": log}
    finally:
        stop_app(proc)


# ---------------------------------------------------------------------------- an app with its own folders
@dataclass
class AppProcess:
    """A running `python app.py` and where it keeps things."""

    proc: subprocess.Popen
    url: str
    runs: Path  # --runs-dir: checkpoints of sessions that ended
    tmp: Path  # the server's TMPDIR: live session folders (gancls-app-*/<run id>) and Gradio's cache
    log: Path

    def live_runs(self) -> list[Path]:
        """Live session folders (each a run id)."""
        return sorted(p for p in self.tmp.glob("gancls-app-*/*") if p.is_dir())

    def kept_runs(self) -> list[Path]:
        """Kept runs (folders named by run id) in the runs folder."""
        return sorted(p for p in self.runs.iterdir() if p.is_dir() and not p.name.startswith("."))

    def rss(self) -> int:
        """The server's resident memory in bytes."""
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as a service manager or a Space stops it; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Ctrl-C (so it keeps runs and removes temp files), then kill if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def launch(checkpoint: Path | None, work: Path, *extra: str, runs: Path | None = None,
           data_dir: Path | None = None, timeout: float = 90) -> AppProcess:
    """Start the app on a free port with its own runs folder and TMPDIR under `work`; wait until it answers."""
    port = free_port()
    runs = runs or work / "runs"
    tmp = work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    log = work / f"app-{port}.log"
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--runs-dir", str(runs), *extra]
    if checkpoint is not None:
        args += ["--checkpoint", str(checkpoint)]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "TMPDIR": str(tmp), "GRADIO_HEARTBEAT_INTERVAL": "1"}  # a closed client is noticed within ~1 s
    for name in ("GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME", "GRADIO_TEMP_DIR"):
        env.pop(name, None)
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return AppProcess(proc, url, runs, tmp, log)
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"the app did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
