"""Calling the app's endpoints from a test or a benchmark: gradio_client jobs and plain HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

# device, data, seconds, epochs, max_steps, arch, batch, lr_d, lr_g, seed, objective, loss, start
TRAIN = ["auto", "embedded", 120, 0, 0, "small", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan", "scratch"]
TRAIN_NAMES = ["device", "data", "seconds", "epochs", "max_steps", "arch", "batch", "lr_d", "lr_g", "seed",
               "objective", "loss", "start"]


def train_args(**changes: Any) -> list:
    """The /train inputs: a small model on the embedded subset, with `changes`."""
    values = dict(zip(TRAIN_NAMES, TRAIN), **changes)
    return [values[n] for n in TRAIN_NAMES]


def wait_outputs(job, n: int, timeout: float = 60) -> list:
    """The streamed outputs of a gradio_client job, once it has sent at least `n` of them."""
    t0 = time.monotonic()
    while len(job.outputs()) < n:
        assert not job.done(), f"the run ended early: {job.outputs()[-1:]}"
        assert time.monotonic() - t0 < timeout, "no live updates"
        time.sleep(0.05)
    return job.outputs()


def raw_call(url: str, api: str, data: list, session_hash: str | None = None) -> tuple[str, Any]:
    """Call an endpoint over plain HTTP (no client-side file handling): ('complete' | 'error', payload)."""
    body = json.dumps({"data": data, **({"session_hash": session_hash} if session_hash else {})}).encode()
    req = urllib.request.Request(f"{url}gradio_api/call/{api}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        event_id = json.load(r)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=60) as r:
        lines = r.read().decode().splitlines()
    event = next(line.split(": ", 1)[1] for line in lines if line.startswith("event: ") and "heartbeat" not in line)
    payload = next((line.split(": ", 1)[1] for line in lines if line.startswith("data: ")), "null")
    return event, json.loads(payload)


def png(path: str) -> Any:
    """A PNG file as a numpy array."""
    import numpy as np
    from PIL import Image

    return np.array(Image.open(path))


def expected_generate(model: Any, labels: list[int], per: int, seed: int) -> Any:
    """What the app's Generate shows for this model and request (uint8 [H, W])."""
    from gancls.draw import labelled_grid
    from gancls.sampling import label_grid

    images, _ = label_grid(model, labels, per, seed, same_noise=False)
    return labelled_grid(images, labels, per, scale=2)
