"""Free ports, and waiting for a URL or a condition."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from typing import Callable


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until `url` answers 200; RuntimeError if the process dies first, TimeoutError if time runs out."""
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


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns its last value."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(every)
    return True
