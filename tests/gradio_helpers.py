"""Helpers shared by the tests that drive the app through gradio_client."""

from __future__ import annotations

import time


def wait_outputs(job, n: int, timeout: float = 60) -> list:
    """The streamed outputs of a gradio_client job, once it has sent at least `n` of them."""
    t0 = time.monotonic()
    while len(job.outputs()) < n:
        assert not job.done(), f"the run ended early: {job.outputs()[-1:]}"
        assert time.monotonic() - t0 < timeout, "no live updates"
        time.sleep(0.05)
    return job.outputs()
