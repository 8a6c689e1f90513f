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


def draw_a_one(page) -> None:
    """On a playwright page: draw a vertical stroke (a "1") on Probe's pad and probe it."""
    page.get_by_role("tab", name="3 · Probe").click()
    page.get_by_role("tab", name="Draw").click()
    page.click("#sketch button[aria-label='Brush']")
    box = page.locator("#sketch canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(20):
        page.mouse.move(x, y + i * box["height"] * 0.03)
    page.mouse.up()
    page.click("#draw-btn")
    page.wait_for_selector("#real-label:has-text('Your drawing')")
